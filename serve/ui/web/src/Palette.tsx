// Add a node from the catalog: search by name, category, tag, or `accepts:Type` / `produces:Type`. With a node
// selected, the node types suggested after its first output (POST /v1/suggestions) come first, marked.

import { useEffect, useMemo, useState } from "react";
import { rankBySuggestions, searchCatalog, suggestNext, type Suggested } from "./catalog";
import type { NodeSpec, WorkflowDocument } from "./model";

/** The port suggestions start from: an output of a node of the document being edited. */
export interface SuggestFrom {
  workflow: WorkflowDocument;
  node: string;
  port: string;
}

export function Palette({ specs, onPick, suggestFrom }: { specs: Map<string, NodeSpec>; onPick: (spec: NodeSpec) => void; suggestFrom?: SuggestFrom }) {
  const [query, setQuery] = useState("");
  const [suggested, setSuggested] = useState<Suggested[]>([]);
  useEffect(() => {
    setSuggested([]);
    if (!suggestFrom) return;
    let current = true;
    void suggestNext(suggestFrom.workflow, suggestFrom.node, suggestFrom.port).then((s) => current && setSuggested(s));
    return () => {
      current = false;
    };
  }, [suggestFrom?.workflow, suggestFrom?.node, suggestFrom?.port]);
  const found = useMemo(() => rankBySuggestions(searchCatalog(specs.values(), query), suggested).slice(0, 50), [specs, query, suggested]);
  const marked = useMemo(() => new Set(suggested.map((s) => s.type)), [suggested]);
  return (
    <div className="palette" data-testid="palette">
      <input type="search" placeholder="Add a node: name, category, accepts:Int, produces:Table" aria-label="Search the node catalog" value={query} onChange={(e) => setQuery(e.target.value)} />
      {suggestFrom && suggested.length > 0 && <p className="hint">Suggested after {suggestFrom.node}.{suggestFrom.port} first</p>}
      <ul>
        {found.map((s) => (
          <li key={s.id}>
            <button className="link" onClick={() => onPick(s)} title={s.description} data-testid={`add-${s.id}`}>
              {s.id}
            </button>
            <span className="hint"> {s.category}{marked.has(s.id) ? " · suggested" : ""}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
