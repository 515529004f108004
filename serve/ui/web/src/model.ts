// The shapes of the API's JSON that the UI reads (serve/api/v1/schemas.py), and of the graph it draws.

/** A type as `GET /v1/nodes` gives it in `type_json` (typesys/jsonio.py). */
export type TypeJson =
  | { kind: "primitive"; name: string }
  | { kind: "typevar"; name: string }
  | { kind: "list"; item: TypeJson }
  | { kind: "dict"; key: TypeJson; value: TypeJson }
  | { kind: "tuple"; items: TypeJson[] }
  | { kind: "union"; members: TypeJson[] }
  | { kind: "record"; fields: { name: string; type: TypeJson; required?: boolean }[] }
  | { kind: "table"; columns?: unknown }
  | { kind: "ndarray"; dtype?: string; rank?: number }
  | { kind: "model"; flavor?: string }
  | { kind: "nominal"; name: string; parent?: TypeJson };

export interface PortSpec {
  name: string;
  type: string;
  type_json?: TypeJson;
  schema?: JsonSchema;
  required?: boolean;
  description?: string;
  default?: unknown;
}

export interface NodeSpec {
  id: string;
  plugin: string;
  name: string;
  version: string;
  description: string;
  category: string;
  tags?: string[];
  inputs: PortSpec[];
  outputs: PortSpec[];
  params: PortSpec[];
}

export interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  default?: unknown;
  description?: string;
  [key: string]: unknown;
}

/** A node of the canonical workflow document (DESIGN.md "The canonical workflow document"). */
export interface DocNode {
  type: string;
  in?: Record<string, string | { value: unknown }>;
  params?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface WorkflowDocument {
  format: string;
  name: string;
  inputs?: Record<string, { type: string; [key: string]: unknown }>;
  nodes: Record<string, DocNode>;
  outputs?: Record<string, string>;
  [key: string]: unknown;
}

export interface WorkflowSummary {
  id: string;
  name: string;
  owner: string;
  latest_version: number;
  created_at: string;
  updated_at: string;
}

export interface WorkflowVersion {
  workflow_id: string;
  name: string;
  version: number;
  content_hash: string;
  author: string;
  message: string;
  created_at: string;
  workflow: WorkflowDocument;
}

export interface VersionSummary {
  version: number;
  content_hash: string;
  author: string;
  message: string;
  created_at: string;
}

export interface Diagnostic {
  code: string;
  severity: "error" | "warning" | "note";
  title?: string;
  message: string;
  node?: string | null;
  port?: string | null;
  field?: string | null;
  hint?: string | null;
}

export interface TypeCheck {
  source: string;
  target: string;
  assignable: boolean;
  subtype: boolean;
  reason: string;
  coercion: { kind: string; steps?: { description?: string; node?: string | null }[] } | null;
}

export type NodeStatus = "pending" | "running" | "succeeded" | "failed" | "retrying" | "skipped" | "cached" | "cancelled";

export interface NodeStateOut {
  node: string;
  type: string;
  status: string;
  attempts: number;
  started_at?: string | null;
  finished_at?: string | null;
  duration_s?: number | null;
  error?: Record<string, unknown> | null;
}

export interface RunDetail {
  id: string;
  workflow_id: string | null;
  workflow_version: number | null;
  status: string;
  inputs: Record<string, unknown>;
  error: Record<string, unknown> | null;
  last_seq: number;
  nodes: NodeStateOut[];
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** A "run to here" or a re-run: the nodes it ran to (null: the whole workflow). */
  targets?: string[] | null;
  /** A re-run: the run whose recorded inputs it used, and the node it re-ran. */
  rerun_of?: { run: string; node: string } | null;
}

/** One node of a run for the inspector (GET /v1/runs/{id}/nodes/{node}). */
export interface RunNodeDetail {
  node: string;
  type: string;
  status: string;
  executor: string;
  ray_task: { name: string; dashboard_url: string | null; host?: string | null; ray_node?: string | null } | null;
  outputs: { port: string; type: string; table: boolean; preview: string | null; value?: string | null }[];
  /** Its input ports and where each value came from (`node.port`, `$inputs.name`, a constant). */
  inputs: { port: string; type: string | null; source: string; from_nodes: string[]; table: boolean; preview: string | null; value: string }[];
  /** The node this one was merged into (it ran once for both), or null. */
  merged_into?: string | null;
}

export interface RunEvent {
  run_id: string;
  seq: number;
  type: string;
  node: string | null;
  attempt: number | null;
  time: number;
  payload: Record<string, unknown>;
}
