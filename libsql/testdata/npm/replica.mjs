// One step of an embedded replica's life (npm libsql, v1 sync): the local
// files keep its state between runs. Usage: node replica.mjs DBPATH ACTION [ARG]
// ACTION: sync | write TEXT | open. Env: URL, TOKEN. Prints JSON.
import Database from "libsql";

const [, , path, action, arg] = process.argv;
const out = {};
try {
  const db = new Database(path, { syncUrl: process.env.URL, authToken: process.env.TOKEN });
  if (action === "sync") {
    out.sync = await db.sync();
  } else if (action === "write") {
    const r = db.prepare("INSERT INTO t (v) VALUES (?)").run(arg);
    out.run = { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
  }
  if (action !== "open") {
    out.rows = db.prepare("SELECT id, v FROM t ORDER BY id").all().map((r) => ({ id: r.id, v: r.v }));
  }
  db.close();
} catch (e) {
  out.error = String((e && e.message) || e);
}
console.log(JSON.stringify(out, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
