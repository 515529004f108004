// Build-time only (vite.config.ts): drops the prose descriptions of ELK's layout options, algorithms and
// categories from elkjs's worker script. ELK keeps them for tools that list its options (the worker's
// "options", "algorithms" and "categories" commands, which this UI never sends); the layout never reads them.
// They are about 45 KB of the 1.6 MB script (about 14 KB gzip, some 2% of the UI's bundle).
//
// elkjs ships ELK compiled by GWT, its names minified, so the setters are found by what they are given: the
// description of one known option, algorithm and category (ANCHORS), each the second argument of a
// GWT setter (`function f(a,b){a.c=b;return a}`) in a builder chain. Every string literal handed to those
// setters is then emptied. If an elkjs upgrade moves an anchor, the build fails rather than quietly shipping
// the descriptions again (src/elkDescriptions.test.ts also lays graphs out with and without them, to the
// same positions).

import type { Node as EsNode, Program } from "estree";

/** The start of one description per kind of ELK metadata (ELK's own texts, from its .melk files). */
export const ANCHORS = {
  option: "Seed used for pseudo-random number generators",
  algorithm: "Distributes the nodes randomly on the plane",
  category: "The layer-based method was introduced by Sugiyama",
} as const;

/** What `stripDescriptions` did: the script without descriptions, how many it emptied and the characters saved. */
export interface Stripped {
  code: string;
  count: number;
  saved: number;
}

type Ranged = EsNode & { start: number; end: number };

function children(node: EsNode): EsNode[] {
  const out: EsNode[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === "type" || key === "start" || key === "end" || key === "loc" || key === "range") continue;
    if (Array.isArray(value)) {
      for (const v of value) if (v && typeof v.type === "string") out.push(v as EsNode);
    } else if (value && typeof value === "object" && typeof (value as EsNode).type === "string") {
      out.push(value as EsNode);
    }
  }
  return out;
}

/** Names of top-level functions of the form `function f(a,b){a.x=b;return a}` (a GWT builder setter). */
function setters(program: Program): Set<string> {
  const names = new Set<string>();
  for (const statement of program.body) {
    if (statement.type !== "FunctionDeclaration" || !statement.id || statement.params.length !== 2) continue;
    const [a, b] = statement.params;
    const body = statement.body.body;
    if (a.type !== "Identifier" || b.type !== "Identifier" || body.length !== 2) continue;
    const [assign, ret] = body;
    const sets =
      assign.type === "ExpressionStatement" &&
      assign.expression.type === "AssignmentExpression" &&
      assign.expression.operator === "=" &&
      assign.expression.left.type === "MemberExpression" &&
      assign.expression.left.object.type === "Identifier" &&
      assign.expression.left.object.name === a.name &&
      assign.expression.right.type === "Identifier" &&
      assign.expression.right.name === b.name;
    const returns = ret.type === "ReturnStatement" && ret.argument?.type === "Identifier" && ret.argument.name === a.name;
    if (sets && returns) names.add(statement.id.name);
  }
  return names;
}

const isString = (node: EsNode): node is EsNode & { type: "Literal"; value: string } =>
  node.type === "Literal" && typeof (node as { value: unknown }).value === "string";

/** `code` (elkjs's lib/elk-worker.min.js) with the descriptions emptied; `parse` is an ESTree parser (vite's
 * `parseAst`). Throws if an anchor is not found as a setter's argument. */
export function stripDescriptions(code: string, parse: (code: string) => Program): Stripped {
  const program = parse(code);
  const candidates = setters(program);
  // Calls of a setter on a builder chain (its first argument another call) with a string literal.
  const calls: { callee: string; literal: Ranged & { value: string } }[] = [];
  const stack: EsNode[] = [program];
  while (stack.length) {
    const node = stack.pop() as EsNode;
    if (node.type === "CallExpression" && node.callee.type === "Identifier" && candidates.has(node.callee.name)) {
      const [target, value] = node.arguments;
      if (node.arguments.length === 2 && target.type === "CallExpression" && isString(value as EsNode)) {
        calls.push({ callee: node.callee.name, literal: value as Ranged & { value: string } });
      }
    }
    stack.push(...children(node));
  }
  const describing = new Set<string>();
  for (const [kind, anchor] of Object.entries(ANCHORS)) {
    const found = calls.filter((c) => c.literal.value.startsWith(anchor));
    if (found.length === 0) {
      throw new Error(
        `elkDescriptions: the ${kind} description starting "${anchor}" is not a setter's argument in elkjs's ` +
          "worker script (elkjs upgraded?): update ANCHORS in src/elkDescriptions.ts, or drop the plugin from vite.config.ts",
      );
    }
    for (const c of found) describing.add(c.callee);
  }
  const emptied = calls.filter((c) => describing.has(c.callee) && c.literal.value !== "").map((c) => c.literal);
  emptied.sort((x, y) => x.start - y.start);
  const parts: string[] = [];
  let at = 0;
  for (const literal of emptied) {
    // The parser's offsets must be the string's (UTF-16) indices: each range is the literal, quotes included.
    const raw = code.slice(literal.start, literal.end);
    if (!/^(['"]).*\1$/s.test(raw) || raw.length < literal.value.length + 2) {
      throw new Error(`elkDescriptions: the parser's offsets do not match the script at ${literal.start}`);
    }
    parts.push(code.slice(at, literal.start), "''");
    at = literal.end;
  }
  parts.push(code.slice(at));
  const out = parts.join("");
  return { code: out, count: emptied.length, saved: code.length - out.length };
}
