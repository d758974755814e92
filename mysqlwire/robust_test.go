package mysqlwire_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// rawLogin performs a mysql_native_password handshake by hand and returns
// the authenticated connection, for sending packets no driver would send.
func rawLogin(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	hs := readPacket(t, c)
	// protocol(1) version\0 connid(4) salt1(8) filler(1) caps(2) cs(1) status(2) caps(2) authlen(1) reserved(10) salt2(12)\0 plugin\0
	i := bytes.IndexByte(hs[1:], 0) + 2
	i += 4
	salt := append([]byte{}, hs[i:i+8]...)
	i += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
	salt = append(salt, hs[i:i+12]...)
	scramble := nativeScramble(salt, []byte(testPassword))

	var p bytes.Buffer
	caps := uint32(0x00000200 | 0x00008000 | 0x00080000 | 0x00000008 | 0x00000001) // protocol41, secure conn, plugin auth, connect with db, long password
	binary.Write(&p, binary.LittleEndian, caps)
	binary.Write(&p, binary.LittleEndian, uint32(1<<24))
	p.WriteByte(255)
	p.Write(make([]byte, 23))
	p.WriteString(testUser + "\x00")
	p.WriteByte(byte(len(scramble)))
	p.Write(scramble)
	p.WriteString(testDB + "\x00")
	p.WriteString("mysql_native_password\x00")
	writePacket(t, c, 1, p.Bytes())
	if ok := readPacket(t, c); ok[0] != 0 {
		t.Fatalf("login failed: %q", ok)
	}
	return c
}

func nativeScramble(salt, password []byte) []byte {
	h1 := sha1.Sum(password)
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(salt)
	h.Write(h2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= h1[i]
	}
	return out
}

func readPacket(t *testing.T, c net.Conn) []byte {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("read packet header: %v", err)
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read packet: %v", err)
	}
	return body
}

func writePacket(t *testing.T, c net.Conn, seq byte, body []byte) {
	t.Helper()
	hdr := []byte{byte(len(body)), byte(len(body) >> 8), byte(len(body) >> 16), seq}
	if _, err := c.Write(append(hdr, body...)); err != nil {
		t.Fatalf("write packet: %v", err)
	}
}

func TestMalformedPacketsCloseOnlyThatConnection(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	db.SetMaxIdleConns(1)
	mustExec(t, db, "CREATE TABLE m (id INTEGER PRIMARY KEY)")
	// Hold one healthy connection open across the abuse.
	healthy, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()

	tests := []struct {
		name string
		seq  byte
		body []byte
	}{
		{"wrong sequence number", 7, []byte{0x03, 's', 'e', 'l', 'e', 'c', 't', ' ', '1'}},
		{"execute unknown statement", 0, []byte{0x17, 9, 9, 9, 9, 0, 1, 0, 0, 0}},
		{"truncated execute", 0, []byte{0x17, 1}},
		{"unknown command", 0, []byte{0xee, 1, 2, 3}},
		{"empty packet", 0, nil},
		{"prepare garbage", 0, append([]byte{0x16}, bytes.Repeat([]byte{0xff, 0x00, '?'}, 50)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := rawLogin(t, ts.addr)
			defer c.Close()
			writePacket(t, c, tc.seq, tc.body)
			// Whatever the server answers (error packet or close), it must
			// answer within the deadline and stay up.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4096)
			if _, err := c.Read(buf); err != nil && strings.Contains(err.Error(), "timeout") {
				t.Errorf("server neither answered nor closed: %v", err)
			}
			if err := healthy.PingContext(context.Background()); err != nil {
				t.Fatalf("healthy connection broken: %v", err)
			}
			var n int
			if err := db.QueryRow("SELECT count(*) FROM m").Scan(&n); err != nil {
				t.Fatalf("new connection after %s: %v", tc.name, err)
			}
		})
	}
}

func TestMariaDBCLI(t *testing.T) {
	cli := need(t, "mariadb")
	ts := startServer(t)
	host, port, _ := net.SplitHostPort(ts.addr)
	run := func(t *testing.T, stdin string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	base := []string{"--no-defaults", "-h", host, "-P", port, "-u", testUser, "-p" + testPassword, testDB}
	sock := []string{"--no-defaults", "-S", ts.socket, "-u", testUser, "-p" + testPassword, testDB}

	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
		fail  bool
	}{
		{"tcp -e", append(base, "-N", "-B", "-e", "CREATE TABLE cli (a INTEGER, b TEXT); INSERT INTO cli VALUES (1, 'x'), (2, NULL); SELECT a, b FROM cli ORDER BY a"), "", "1\tx\n2\tNULL\n", false},
		{"socket -e", append(sock, "-N", "-B", "-e", "SELECT count(*) FROM cli"), "", "2\n", false},
		{"batch from stdin", append(base, "-N", "-B"), "SELECT a FROM cli WHERE b = 'x';\nSELECT 40 + 2;\n", "1\n42\n", false},
		{"bad password", []string{"--no-defaults", "-h", host, "-P", port, "-u", testUser, "-pnope", "-e", "SELECT 1"}, "", "ERROR 1045", true},
		{"error keeps exit code", append(base, "-e", "SELECT * FROM missing"), "", "ERROR 1146", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, tc.stdin, tc.args...)
			if tc.fail != (err != nil) {
				t.Errorf("err = %v, want failure=%v\n%s", err, tc.fail, out)
			}
			if tc.fail && !strings.Contains(out, tc.want) || !tc.fail && out != tc.want {
				t.Errorf("output = %q, want %q", out, tc.want)
			}
		})
	}
}

// FuzzQuery sends arbitrary statements, as text and as prepared statements
// with an arbitrary parameter, through a live connection and the real
// translator: the server must answer each with a result or a MySQL error,
// keep serving and never leave the writer held.
func FuzzQuery(f *testing.F) { fuzzQuery(f, withTranslator(nil)) }

// FuzzQueryRaw is FuzzQuery with SQL passed to SQLite untranslated, so the
// wire's own defences (authorizer, error mapping, binding) see raw input.
func FuzzQueryRaw(f *testing.F) { fuzzQuery(f) }

func fuzzQuery(f *testing.F, opts ...option) {
	for _, seed := range []string{
		"SELECT 1", "SELECT ?", "INSERT INTO f (a) VALUES (?)", "UPDATE f SET a = ? WHERE a > 0",
		"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT x", "ROLLBACK TO SAVEPOINT x", "SET autocommit=0",
		"SET @x = ?", "select @x", "use wordpress", "use other", "ATTACH 'x' AS y", "PRAGMA writable_schema=1",
		"SELECT load_extension('x')", "SELECT :_ephpm_x", "SELECT '?' || ?", "SELECT x'00ff', 1e308, -0.0, 9223372036854775807",
		"CREATE TABLE g (a INT)", "DROP TABLE f", "SELECT * FROM f; SELECT 2", "\x00\xff", "",
		"SELECT SQL_CALC_FOUND_ROWS * FROM f LIMIT 1", "SELECT FOUND_ROWS()", "SHOW TABLES", "SHOW FULL COLUMNS FROM f",
		"INSERT INTO f (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)", "SET NAMES utf8mb4",
		"SELECT DATE_ADD(NOW(), INTERVAL ? DAY)", "SELECT @@version, @@session.sql_mode",
	} {
		f.Add(seed, "param")
	}
	ts := startServer(f, opts...)
	db, err := sql.Open("mysql", ts.dsn("multiStatements=true"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	mustExec(f, db, "CREATE TABLE f (a INT, b TEXT)")
	f.Fuzz(func(t *testing.T, query, param string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("conn: %v", err)
		}
		defer conn.Close()
		if rows, err := conn.QueryContext(ctx, query); err == nil {
			rows.Close()
		}
		if n := strings.Count(query, "?"); n > 0 && n < 50 {
			args := make([]any, n)
			for i := range args {
				args[i] = param
			}
			if rows, err := conn.QueryContext(ctx, query, args...); err == nil {
				rows.Close()
			}
		}
		// End whatever the input began, then check the server still serves.
		conn.ExecContext(ctx, "ROLLBACK")
		conn.ExecContext(ctx, "SET autocommit=1")
		conn.Close()
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("server stopped serving after %q: %v", query, err)
		}
		// No statement may leave the single writer held once its
		// connection has ended its transaction.
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		w, err := ts.db.AcquireWriter(wctx)
		if err != nil {
			t.Fatalf("writer still held after %q: %v", query, err)
		}
		w.Release(ctx)
	})
}

func BenchmarkPointSelect(b *testing.B) {
	for _, mode := range []struct {
		name   string
		params string
		tr     bool
	}{
		{"prepared/passthrough", "", false},
		{"text/passthrough", "interpolateParams=true", false},
		{"prepared/sqlxlate", "", true},
		{"text/sqlxlate", "interpolateParams=true", true},
	} {
		b.Run(mode.name, func(b *testing.B) {
			var ts *testServer
			if mode.tr {
				ts = startServer(b, withTranslator(nil))
			} else {
				ts = startServer(b)
			}
			db := ts.open(b, mode.params)
			if mode.tr {
				mustExec(b, db, "CREATE TABLE bp (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, title VARCHAR(100), n INT)")
			} else {
				mustExec(b, db, "CREATE TABLE bp (id INTEGER PRIMARY KEY, title VARCHAR(100), n INT)")
			}
			for i := 1; i <= 1000; i++ {
				mustExec(b, db, "INSERT INTO bp (id, title, n) VALUES (?, ?, ?)", i, fmt.Sprintf("post %d", i), i*2)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				var title string
				var n int
				for pb.Next() {
					i++
					if err := db.QueryRow("SELECT title, n FROM bp WHERE id = ?", i%1000+1).Scan(&title, &n); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestMariaDBInteractive drives the interactive client through a pty (as
// `ephpm db shell` users would): its startup queries, `status` and a
// query must work.
func TestMariaDBInteractive(t *testing.T) {
	cli := need(t, "mariadb")
	scriptCmd := need(t, "script")
	ts := startServer(t, withTranslator(nil))
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE t1 (id INT PRIMARY KEY, name VARCHAR(10))")
	host, port, _ := net.SplitHostPort(ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	line := fmt.Sprintf("%s --no-defaults -h %s -P %s -u %s -p'%s' %s", cli, host, port, testUser, testPassword, testDB)
	cmd := exec.CommandContext(ctx, scriptCmd, "-qc", line, "/dev/null")
	cmd.Stdin = strings.NewReader("status\nselect 40+2 AS answer;\nshow tables;\nquit\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	for _, want := range []string{"Current database:\twordpress", "Current user:\t\twp@localhost", "| answer |", "|     42 |", "| Tables_in_wordpress |", "| t1 "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "ERROR") {
		t.Errorf("errors in session:\n%s", out)
	}
}

// prepareColumns sends COM_STMT_PREPARE and returns the column and
// parameter counts of the answer.
func prepareColumns(t *testing.T, c net.Conn, query string) (cols, params int) {
	t.Helper()
	writePacket(t, c, 0, append([]byte{0x16}, query...))
	ok := readPacket(t, c)
	if ok[0] != 0 {
		t.Fatalf("prepare %q: error packet %q", query, ok)
	}
	cols = int(binary.LittleEndian.Uint16(ok[5:7]))
	params = int(binary.LittleEndian.Uint16(ok[7:9]))
	// Drain parameter and column definitions (each block ends with EOF).
	for _, n := range []int{params, cols} {
		if n == 0 {
			continue
		}
		for i := 0; i <= n; i++ {
			readPacket(t, c)
		}
	}
	return cols, params
}

func TestPrepareMetadataFollowsSchemaChanges(t *testing.T) {
	ts := startServer(t, withTranslator(nil))
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE pc (a INT)")
	c := rawLogin(t, ts.addr)
	defer c.Close()
	for i := 0; i < 2; i++ { // the second answer may come from the cache
		if cols, params := prepareColumns(t, c, "SELECT * FROM pc WHERE a > ?"); cols != 1 || params != 1 {
			t.Fatalf("before ALTER: %d columns, %d params; want 1, 1", cols, params)
		}
	}
	mustExec(t, db, "ALTER TABLE pc ADD COLUMN b VARCHAR(10)")
	if cols, _ := prepareColumns(t, c, "SELECT * FROM pc WHERE a > ?"); cols != 2 {
		t.Errorf("after ALTER: %d columns, want 2", cols)
	}
}
