"""Model serving: MLflow registry models deployed as Ray Serve applications and answered in the Open Inference
Protocol (KServe v2).

`codec` turns request bodies (OIP JSON, JSON records, Arrow IPC) into checked data frames and predictions back
into responses; `replica` is the Serve deployment that loads one model and batches its requests, with the fast
path of `fastpath` (an HTTP server inside each replica); `manager` deploys, lists and deletes models and reads
their lineage from MLflow. Nothing here imports MLflow, pandas or Ray at import time.
"""
