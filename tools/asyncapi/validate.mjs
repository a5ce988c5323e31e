// Validates an AsyncAPI document with the official parser, offline (file $refs only).
// Usage: node tools/asyncapi/validate.mjs contracts/asyncapi.yaml
// Prints one JSON line: {"valid": bool, "errors": [...], "warnings": [...], "channels": n,
// "messages": [...]} and exits 1 if the document has errors.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const file = resolve(process.argv[2] ?? "contracts/asyncapi.yaml");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"), {
  source: pathToFileURL(file).href,
});
const show = (d) => ({ code: d.code, message: d.message, path: (d.path ?? []).join("/") });
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).map(show);
const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning).map(show);
const result = { valid: document !== undefined && errors.length === 0, errors, warnings };
if (document) {
  result.version = document.version();
  result.channels = document.channels().length;
  result.operations = document.operations().length;
  result.messages = document.allMessages().all().map((m) => m.name() ?? m.id());
}
console.log(JSON.stringify(result));
process.exit(result.valid ? 0 : 1);
