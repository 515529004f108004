// A form for a node's params, generated from each param's JSON Schema (GET /v1/nodes: `params[].schema`).

import { useState } from "react";
import type { JsonSchema, PortSpec } from "./model";

function kindOf(schema: JsonSchema | undefined): string {
  if (!schema) return "json";
  if (Array.isArray(schema.enum)) return "enum";
  const t = Array.isArray(schema.type) ? schema.type.find((x) => x !== "null") : schema.type;
  return t === "integer" || t === "number" || t === "boolean" || t === "string" ? t : "json";
}

/** One field per param: numbers, booleans, strings and enums get inputs; anything else is edited as JSON. */
export function ParamsForm({ params, values, onChange, readOnly }: { params: PortSpec[]; values: Record<string, unknown>; onChange: (v: Record<string, unknown>) => void; readOnly?: boolean }) {
  if (params.length === 0) return <p className="hint">This node has no params.</p>;
  const set = (name: string, value: unknown) => {
    const next = { ...values };
    if (value === undefined) delete next[name];
    else next[name] = value;
    onChange(next);
  };
  return (
    <div className="params" data-testid="params-form">
      {params.map((p) => (
        <ParamField key={p.name} spec={p} value={values[p.name]} onChange={(v) => set(p.name, v)} readOnly={readOnly} />
      ))}
    </div>
  );
}

function ParamField({ spec, value, onChange, readOnly }: { spec: PortSpec; value: unknown; onChange: (v: unknown) => void; readOnly?: boolean }) {
  const kind = kindOf(spec.schema);
  const id = `param-${spec.name}`;
  const label = (
    <label htmlFor={id} title={spec.description}>
      {spec.name}
      {spec.required && " *"} <span className="rw-type">{spec.type}</span>
    </label>
  );
  let field: React.ReactNode;
  if (kind === "boolean") {
    field = <input id={id} type="checkbox" disabled={readOnly} checked={value === true} onChange={(e) => onChange(e.target.checked)} />;
  } else if (kind === "enum") {
    const options = (spec.schema?.enum ?? []) as unknown[];
    field = (
      <select id={id} disabled={readOnly} value={value === undefined ? "" : JSON.stringify(value)} onChange={(e) => onChange(e.target.value === "" ? undefined : JSON.parse(e.target.value))}>
        <option value="">(default)</option>
        {options.map((o) => (
          <option key={JSON.stringify(o)} value={JSON.stringify(o)}>
            {String(o)}
          </option>
        ))}
      </select>
    );
  } else if (kind === "integer" || kind === "number") {
    field = (
      <input
        id={id}
        type="number"
        readOnly={readOnly}
        step={kind === "integer" ? 1 : "any"}
        min={spec.schema?.minimum}
        max={spec.schema?.maximum}
        value={typeof value === "number" ? value : ""}
        onChange={(e) => onChange(e.target.value === "" ? undefined : kind === "integer" ? parseInt(e.target.value, 10) : parseFloat(e.target.value))}
      />
    );
  } else if (kind === "string") {
    field = <input id={id} type="text" readOnly={readOnly} value={typeof value === "string" ? value : ""} onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)} />;
  } else {
    field = <JsonField id={id} value={value} onChange={onChange} readOnly={readOnly} />;
  }
  return (
    <div className="param">
      {label}
      {field}
      {spec.description && <div className="hint">{spec.description}</div>}
    </div>
  );
}

function JsonField({ id, value, onChange, readOnly }: { id: string; value: unknown; onChange: (v: unknown) => void; readOnly?: boolean }) {
  const [text, setText] = useState(value === undefined ? "" : JSON.stringify(value, null, 1));
  const [error, setError] = useState("");
  const apply = () => {
    if (text.trim() === "") return onChange(undefined);
    try {
      onChange(JSON.parse(text));
      setError("");
    } catch (e) {
      setError(`not JSON: ${(e as Error).message}`);
    }
  };
  return (
    <>
      <textarea id={id} readOnly={readOnly} value={text} onChange={(e) => setText(e.target.value)} onBlur={apply} rows={3} />
      {error && <div className="error">{error}</div>}
    </>
  );
}
