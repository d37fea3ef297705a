// Decodes OTLP/HTTP JSON bodies (files named on the command line) with the OTLP
// protobuf definitions (protobufjs code generated from opentelemetry-proto, as
// shipped in @opentelemetry/otlp-transformer 0.57). Each body must
// convert, encode to protobuf and decode back to the same content: a misspelled field, a
// wrong type or an enum out of range shows up as a difference. Prints one JSON
// object: {"requests": N, "records": [{attributes...}], "resource": {...}}.
const path = process.env.VIGIL_OTLP_ROOT;
const root = require(path);
const T = root.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;
const fs = require("fs");

function normalise(v) {  // drops what protobuf cannot tell from absent: empty lists and objects
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v).sort()) {
      const n = normalise(v[k]);
      if (Array.isArray(n) && n.length === 0) continue;
      if (n && typeof n === "object" && !Array.isArray(n) && Object.keys(n).length === 0 && k !== "value") continue;
      out[k] = n;
    }
    return out;
  }
  return v;
}

function plain(any) {  // AnyValue -> JS value
  if ("stringValue" in any) return any.stringValue;
  if ("intValue" in any) return Number(any.intValue);
  if ("boolValue" in any) return any.boolValue;
  if ("doubleValue" in any) return any.doubleValue;
  if ("arrayValue" in any) return (any.arrayValue.values || []).map(plain);
  if ("kvlistValue" in any) return attrs(any.kvlistValue.values || []);
  return null;
}
function attrs(list) {
  const o = {};
  for (const kv of list) o[kv.key] = plain(kv.value || {});
  return o;
}

const out = {requests: 0, records: [], resource: null, errors: []};
for (const file of process.argv.slice(2)) {
  const json = JSON.parse(fs.readFileSync(file, "utf8"));
  // fromObject reads the JSON mapping (64-bit integers as strings); verify then
  // checks the message it made, and the round trip below anything fromObject dropped.
  const msg = T.fromObject(json);
  const err = T.verify(msg);
  if (err) { out.errors.push(`${file}: ${err}`); continue; }
  const bytes = T.encode(msg).finish();
  const back = T.toObject(T.decode(bytes), {longs: String, enums: Number, bytes: String, defaults: false});
  const a = JSON.stringify(normalise(json)), b = JSON.stringify(normalise(back));
  if (a !== b) { out.errors.push(`${file}: the protobuf round trip differs:\n sent ${a.slice(0, 600)}\n back ${b.slice(0, 600)}`); continue; }
  out.requests++;
  for (const rl of back.resourceLogs || []) {
    out.resource = attrs(rl.resource.attributes || []);
    for (const sl of rl.scopeLogs || [])
      for (const lr of sl.logRecords || [])
        out.records.push({severityNumber: lr.severityNumber, severityText: lr.severityText,
                          timeUnixNano: lr.timeUnixNano, body: plain(lr.body), scope: sl.scope,
                          attributes: attrs(lr.attributes || [])});
  }
}
process.stdout.write(JSON.stringify(out));
