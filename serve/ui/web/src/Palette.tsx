// Add a node from the catalog: search by name, category, tag, or `accepts:Type` / `produces:Type`.

import { useMemo, useState } from "react";
import { searchCatalog } from "./catalog";
import type { NodeSpec } from "./model";

export function Palette({ specs, onPick }: { specs: Map<string, NodeSpec>; onPick: (spec: NodeSpec) => void }) {
  const [query, setQuery] = useState("");
  const found = useMemo(() => searchCatalog(specs.values(), query).slice(0, 50), [specs, query]);
  return (
    <div className="palette" data-testid="palette">
      <input type="search" placeholder="Add a node: name, category, accepts:Int, produces:Table" aria-label="Search the node catalog" value={query} onChange={(e) => setQuery(e.target.value)} />
      <ul>
        {found.map((s) => (
          <li key={s.id}>
            <button className="link" onClick={() => onPick(s)} title={s.description} data-testid={`add-${s.id}`}>
              {s.id}
            </button>
            <span className="hint"> {s.category}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
