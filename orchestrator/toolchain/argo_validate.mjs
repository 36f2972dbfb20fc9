// Validate Argo custom resources with an independent implementation of the Argo CRD schemas:
// @kubernetes-models/argo-rollouts and @kubernetes-models/argo-cd (`new Rollout(obj).validate()`).
//
// Their validators check types and required fields but let unknown keys through, so this script also
// walks every object against the models' own type declarations (the .d.ts files shipped with the
// packages) and reports each key the model does not declare (a typo such as `canarySerivce`).
//
// Input (stdin): a JSON array of manifests. Output (stdout): a JSON array of
// {"ref": "Kind ns/name", "path": "/spec/...", "message": "..."}. Exit 0 even with findings; exit 2
// when the input cannot be read.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import { AnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate";
import { ClusterAnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/ClusterAnalysisTemplate";
import { Rollout } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout";
import { AppProject } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject";
import { Application } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";

const MODELS = {
  "argoproj.io/v1alpha1/Rollout": [Rollout, "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout"],
  "argoproj.io/v1alpha1/AnalysisTemplate":
    [AnalysisTemplate, "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate"],
  "argoproj.io/v1alpha1/ClusterAnalysisTemplate":
    [ClusterAnalysisTemplate, "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/ClusterAnalysisTemplate"],
  "argoproj.io/v1alpha1/Application": [Application, "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application"],
  "argoproj.io/v1alpha1/AppProject": [AppProject, "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject"],
};

// --- the models' declared keys, from their .d.ts files -------------------------------------------
const searchPaths = createRequire(import.meta.url).resolve.paths("@kubernetes-models/base") ?? [];

function packageFile(specifier) {
  for (const dir of searchPaths) {
    const file = path.join(dir, specifier + ".d.ts");
    if (existsSync(file)) return file;
  }
  throw new Error(`no type declarations for ${specifier}`);
}

const declarations = new Map(); // file -> {type, imports}

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

// The text up to the `close` that balances an opening bracket just before `start`.
function balanced(text, start, open = "{", close = "}") {
  let depth = 1;
  for (let i = start; i < text.length; i++) {
    if (text[i] === open) depth++;
    else if (text[i] === close && --depth === 0) return text.slice(start, i);
  }
  throw new Error("unbalanced declaration");
}

function declaration(file) {
  if (declarations.has(file)) return declarations.get(file);
  const text = stripComments(readFileSync(file, "utf8"));
  const imports = {};
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    const target = m[2].startsWith(".") ? path.join(path.dirname(file), m[2].replace(/\.js$/, ".d.ts")) : m[2];
    for (const name of m[1].split(",").map((n) => n.trim()).filter(Boolean)) imports[name] = target;
  }
  const entry = { imports, type: { kind: "any" } };
  declarations.set(file, entry); // before parsing: recursive types terminate
  const iface = /export interface \w+(?: extends [\w, ]+)? \{/.exec(text);
  const alias = /export type (\w+) = ([^;]+);/.exec(text);
  if (iface) entry.type = objectType(balanced(text, iface.index + iface[0].length), file);
  else if (alias) entry.type = parseType(alias[2], file);
  return entry;
}

function objectType(body, file) {
  const props = {};
  let i = 0;
  while (i < body.length) {
    const m = /\s*(?:"([^"]+)"|(\w+))\??\s*:\s*/y;
    m.lastIndex = i;
    const found = m.exec(body);
    if (!found) break;
    // The property's type runs to the `;` at bracket depth 0.
    let depth = 0;
    let j = m.lastIndex;
    for (; j < body.length; j++) {
      const c = body[j];
      if (c === "{" || c === "<" || c === "(") depth++;
      else if (c === "}" || c === ">" || c === ")") depth--;
      else if (c === ";" && depth === 0) break;
    }
    props[found[1] ?? found[2]] = parseType(body.slice(m.lastIndex, j), file);
    i = j + 1;
  }
  return { kind: "object", props };
}

function parseType(expr, file) {
  const t = expr.trim();
  const index = /^\{\s*\[key: string\]:\s*([\s\S]+?);?\s*\}$/.exec(t);
  if (index) return { kind: "map", of: parseType(index[1], file) };
  if (/^\{\s*\}$/.test(t)) return { kind: "any" };
  if (t.startsWith("{")) return objectType(balanced(t, 1), file);
  const array = /^Array<([\s\S]+)>$/.exec(t);
  if (array) return { kind: "array", of: parseType(array[1], file) };
  if (/^\w+$/.test(t)) {
    const target = declarations.get(file)?.imports[t];
    if (target) return { kind: "ref", file: target.endsWith(".d.ts") ? target : packageFile(target) };
  }
  return { kind: "any" }; // primitives, literals and unions: the schema validator checks those
}

function resolve(type) {
  let seen = 0;
  while (type.kind === "ref" && seen++ < 20) type = declaration(type.file).type;
  return type;
}

function unknownKeys(value, type, where, out) {
  type = resolve(type);
  if (value === null || typeof value !== "object") return;
  if (type.kind === "array" && Array.isArray(value)) {
    value.forEach((v, i) => unknownKeys(v, type.of, `${where}/${i}`, out));
  } else if (type.kind === "map" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) unknownKeys(v, type.of, `${where}/${k}`, out);
  } else if (type.kind === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (!(k in type.props)) out.push({ path: `${where}/${k}`, message: `unknown field "${k}"` });
      else unknownKeys(v, type.props[k], `${where}/${k}`, out);
    }
  }
}

// --- main ----------------------------------------------------------------------------------------
function ref(doc) {
  const meta = doc?.metadata ?? {};
  return `${doc?.kind} ${meta.namespace ? meta.namespace + "/" : ""}${meta.name}`;
}

function validate(doc) {
  const model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!model) return [{ path: "", message: `no Argo model for ${doc.apiVersion}/${doc.kind}` }];
  const [Model, specifier] = model;
  const problems = [];
  try {
    new Model(doc).validate();
  } catch (err) {
    for (const e of err.errors ?? [{ instancePath: "", message: err.message }]) {
      const detail = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "";
      problems.push({ path: e.instancePath ?? "", message: `${e.message}${detail}` });
    }
  }
  unknownKeys(doc, { kind: "ref", file: packageFile(specifier) }, "", problems);
  return problems;
}

let docs;
try {
  docs = JSON.parse(readFileSync(0, "utf8"));
  if (!Array.isArray(docs)) throw new Error("expected a JSON array of manifests");
} catch (err) {
  process.stderr.write(`argo_validate: ${err.message}\n`);
  process.exit(2);
}
const findings = docs.flatMap((doc) => validate(doc).map((p) => ({ ref: ref(doc), ...p })));
process.stdout.write(JSON.stringify(findings) + "\n");
