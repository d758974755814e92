// Drives ephpm's Hrana endpoint with @libsql/client and prints what it saw
// as JSON (the Go test asserts on it). Env: URL, TOKEN.
import { createClient } from "@libsql/client";

const out = {};
const client = createClient({ url: process.env.URL, authToken: process.env.TOKEN, intMode: "bigint" });
const rows = (rs) => rs.rows.map((r) => Object.fromEntries(rs.columns.map((c, i) => [c, r[i]])));
const err = (e) => ({ code: e.code, message: String(e.message) });

try {
  await client.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, n INTEGER, f REAL, b BLOB)");
  const ins = await client.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["first"] });
  out.insert = { rowsAffected: ins.rowsAffected, lastInsertRowid: ins.lastInsertRowid };

  // A write batch whose last step breaks a constraint: nothing of it stays.
  try {
    await client.batch([
      { sql: "INSERT INTO t (v) VALUES (?)", args: ["second"] },
      { sql: "INSERT INTO t (v) VALUES (?)", args: ["first"] },
    ], "write");
    out.batchError = null;
  } catch (e) {
    out.batchError = err(e);
  }
  out.afterFailedBatch = rows(await client.execute("SELECT v FROM t ORDER BY id"));

  const ok = await client.batch([
    { sql: "INSERT INTO t (v) VALUES (:v)", args: { v: "b1" } },
    { sql: "INSERT INTO t (v) VALUES ($v)", args: { v: "b2" } },
  ], "write");
  out.batchOk = ok.map((r) => ({ rowsAffected: r.rowsAffected, lastInsertRowid: r.lastInsertRowid }));

  // An interactive transaction sees its own writes; a rollback undoes them.
  const tx = await client.transaction("write");
  await tx.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["in-tx"] });
  out.txSees = rows(await tx.execute("SELECT count(*) AS c FROM t WHERE v = 'in-tx'"));
  await tx.rollback();
  out.afterRollback = rows(await client.execute("SELECT count(*) AS c FROM t WHERE v = 'in-tx'"));
  const tx2 = await client.transaction("write");
  await tx2.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["committed"] });
  await tx2.commit();
  out.afterCommit = rows(await client.execute("SELECT count(*) AS c FROM t WHERE v = 'committed'"));

  // Values round trip.
  await client.execute({
    sql: "INSERT INTO t (id, v, n, f, b) VALUES (100, ?, ?, ?, ?)",
    args: ["héllo ☃", 9007199254740993n, 3.25, new Uint8Array([0, 1, 2, 255])],
  });
  await client.execute({ sql: "INSERT INTO t (id, v, n, f, b) VALUES (101, NULL, ?, ?, NULL)", args: [-5n, -0.5] });
  const vals = await client.execute("SELECT id, v, n, f, b, typeof(n) AS tn, typeof(f) AS tf, typeof(b) AS tb FROM t WHERE id >= 100 ORDER BY id");
  out.values = vals.rows.map((r) => ({
    id: String(r.id), v: r.v, n: r.n === null ? null : String(r.n), f: r.f,
    b: r.b === null ? null : Array.from(new Uint8Array(r.b)), tn: r.tn, tf: r.tf, tb: r.tb,
  }));

  try {
    await client.execute("SELECT * FROM no_such_table");
  } catch (e) {
    out.parseError = err(e);
  }
} catch (e) {
  out.fatal = String(e && e.stack || e);
}
client.close();
console.log(JSON.stringify(out, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
