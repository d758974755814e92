// A site of a running ephpm cluster seen by libSQL clients: @libsql/client
// over Hrana, then an embedded replica (npm libsql) that syncs the site and
// delegates a write. Env: URL (replication listener), TOKEN (ephpm db
// token), DBFILE (the embedded replica's file), KEY (the wp_options names
// it writes). Prints JSON.
import { createClient } from "@libsql/client";
import Database from "libsql";

const out = {};
const key = process.env.KEY || "ephpm_libsql";
try {
  const c = createClient({ url: process.env.URL, authToken: process.env.TOKEN });
  const rs = await c.execute("SELECT option_value FROM wp_options WHERE option_name = 'blogname'");
  out.blogname = rs.rows[0][0];
  // A write, then a transaction that reads its own write: on a replica
  // node both go to the site's primary.
  const ins = await c.execute({ sql: "INSERT INTO wp_options (option_name, option_value, autoload) VALUES (?, 'hrana', 'no')", args: [key + "_h"] });
  out.hranaChanges = ins.rowsAffected;
  const tx = await c.transaction("write");
  await tx.execute({ sql: "UPDATE wp_options SET option_value = 'hrana-tx' WHERE option_name = ?", args: [key + "_h"] });
  const rb = await tx.execute({ sql: "SELECT option_value FROM wp_options WHERE option_name = ?", args: [key + "_h"] });
  await tx.commit();
  out.hranaTx = rb.rows[0][0];
  c.close();

  const db = new Database(process.env.DBFILE, { syncUrl: process.env.URL, authToken: process.env.TOKEN });
  out.sync = await db.sync();
  out.posts = db.prepare("SELECT post_title FROM wp_posts WHERE post_status = 'publish' ORDER BY ID").all().map((r) => r.post_title);
  const r = db.prepare("INSERT INTO wp_options (option_name, option_value, autoload) VALUES (?, ?, 'no')").run(key, "delegated");
  out.changes = r.changes;
  out.readBack = db.prepare("SELECT option_value FROM wp_options WHERE option_name = ?").get(key)?.option_value ?? null;
  db.close();
} catch (e) {
  out.error = String((e && e.message) || e);
}
console.log(JSON.stringify(out, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
