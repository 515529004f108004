// Colour and short label of a port by its type, so a glance tells which ports can be wired together.

import type { TypeJson } from "./model";

/** Colours of the type heads; anything else (plugin types) gets a stable hue from its name. */
const HEAD_COLOURS: Record<string, string> = {
  Any: "#8a8f98",
  Null: "#b0b4ba",
  Bool: "#e8883a",
  Int: "#2f6fd6",
  Float: "#2aa3c9",
  Number: "#3f8ed0",
  String: "#3aa55d",
  Bytes: "#7c6f57",
  List: "#9b59b6",
  Dict: "#c0398b",
  Tuple: "#8e44ad",
  Record: "#d35d6e",
  Table: "#d4a017",
  NDArray: "#16a085",
  Model: "#c0392b",
};

/** The colour of type variables (`T`): solved only when the graph compiles. */
export const TYPEVAR_COLOUR = "#a0a4ab";

/** The head of a type written as text: `List[Int]` -> `List`, `Int | Null` -> `Int`, `{a: Int}` -> `Record`. */
export function typeHead(text: string): string {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) return "Record";
  const members = splitTopLevel(trimmed, "|").map((m) => m.trim());
  const main = members.find((m) => m !== "Null") ?? members[0] ?? "";
  if (main.startsWith("{")) return "Record";
  const bracket = main.indexOf("[");
  const head = bracket >= 0 ? main.slice(0, bracket) : main;
  return head.startsWith("Optional") ? typeHead(main.slice(bracket + 1, -1)) : head.trim();
}

/** Split at `sep` outside brackets and braces. */
export function splitTopLevel(text: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "[" || c === "{" || c === "(") depth++;
    else if (c === "]" || c === "}" || c === ")") depth--;
    else if (depth === 0 && c === sep) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Whether a type mentions a type variable (solved at compile time, so the editor cannot check it alone). */
export function hasTypeVar(json: TypeJson | undefined): boolean {
  if (!json) return false;
  switch (json.kind) {
    case "typevar":
      return true;
    case "list":
      return hasTypeVar(json.item);
    case "dict":
      return hasTypeVar(json.key) || hasTypeVar(json.value);
    case "tuple":
      return json.items.some(hasTypeVar);
    case "union":
      return json.members.some(hasTypeVar);
    case "record":
      return json.fields.some((f) => hasTypeVar(f.type));
    default:
      return false;
  }
}

/** The colour of a port of type `text` (with its `type_json` when known, to recognise type variables). */
export function typeColour(text: string, json?: TypeJson): string {
  if (json?.kind === "typevar" || /^[A-Z]$/.test(text.trim())) return TYPEVAR_COLOUR;
  const head = typeHead(text);
  return HEAD_COLOURS[head] ?? hashedColour(head);
}

/** A short label for a port: the type text, abbreviated past `max` characters. */
export function typeLabel(text: string, max = 18): string {
  const t = text.trim();
  return t.length <= max ? t : t.slice(0, max - 1) + "…";
}

function hashedColour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360}, 55%, 45%)`;
}
