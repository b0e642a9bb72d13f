//! Raw TCP protocol edge cases.
//!
//! Every case is a function from a server port to a byte transcript (replies, plus markers such
//! as `<EOF>` when the server closed the connection). Tessera (1 and 4 shards) must produce the
//! same transcript as redis-server when redis is installed; otherwise the transcript must equal
//! the bytes captured from redis-server 7.0.15 and stored in this file.
//!
//! `PROTO_CAPTURE=1` prints redis' transcripts (to refresh the captured constants);
//! `PROTO_STRICT_CAPTURED=1` fails when live redis disagrees with a captured constant.

use crate::common::*;
use std::io::Write;
use std::time::Duration;

struct Proto {
    name: &'static str,
    redis: Option<Server>,
    tessera: Vec<(String, Server)>,
}

fn setup(name: &'static str) -> Proto {
    let redis = start_redis();
    if redis.is_none() {
        eprintln!("{name}: redis-server not available; comparing Tessera against captured bytes");
    }
    let tessera = shard_counts()
        .into_iter()
        .map(|n| {
            (
                format!("tessera({n} shard{})", if n == 1 { "" } else { "s" }),
                start_tessera(n, &[]),
            )
        })
        .collect();
    Proto {
        name,
        redis,
        tessera,
    }
}

impl Proto {
    /// Runs `case` against redis (if any) and every Tessera; compares transcripts.
    fn check(&self, case: &str, captured: &[u8], f: impl Fn(u16) -> Vec<u8>) {
        let expected = match &self.redis {
            Some(r) => {
                let got = f(r.port);
                if std::env::var_os("PROTO_CAPTURE").is_some() {
                    eprintln!("CAPTURE {}/{case}: b\"{}\"", self.name, rust_bytes(&got));
                }
                if got != captured {
                    let msg = format!(
                        "{}/{case}: live redis differs from the captured bytes\n  live:     \"{}\"\n  captured: \"{}\"",
                        self.name,
                        escape(&got),
                        escape(captured)
                    );
                    if std::env::var_os("PROTO_STRICT_CAPTURED").is_some() {
                        panic!("{msg}");
                    }
                    eprintln!("warning: {msg}\n  (using live redis as the reference)");
                }
                got
            }
            None => captured.to_vec(),
        };
        for (name, srv) in &self.tessera {
            let got = f(srv.port);
            if got != expected {
                panic!(
                    "\n========== PROTOCOL MISMATCH ==========\ntest: {}\ncase: {case}\nexpected (redis): \"{}\"\n{name}: \"{}\"\n--- {name} log tail ---\n{}\n",
                    self.name,
                    escape(&expected),
                    escape(&got),
                    srv.log_tail(20)
                );
            }
        }
    }
}

/// Escapes bytes as the body of a Rust byte-string literal.
fn rust_bytes(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Sends `bytes` and reads `n` replies, concatenated.
fn send_read(c: &mut RawConn, bytes: &[u8], n: usize) -> Vec<u8> {
    c.send(bytes);
    let mut out = Vec::new();
    for _ in 0..n {
        match c.try_read_reply() {
            Ok(r) => out.extend_from_slice(&r),
            Err(e) => {
                out.extend_from_slice(format!("<{}>", describe_read_error(&e)).as_bytes());
                break;
            }
        }
    }
    out
}

/// Appends `<EOF>` if the server closes the connection within 2 s, `<OPEN>` otherwise (plus any
/// unexpected bytes).
fn closed_marker(c: &mut RawConn, out: &mut Vec<u8>) {
    match c.wait_closed(Duration::from_secs(2)) {
        Ok(extra) => {
            out.extend_from_slice(&extra);
            out.extend_from_slice(b"<EOF>");
        }
        Err(extra) => {
            out.extend_from_slice(&extra);
            out.extend_from_slice(b"<OPEN>");
        }
    }
}

/// Expects that nothing more arrives within 150 ms.
fn nothing_more(c: &mut RawConn, out: &mut Vec<u8>) {
    let extra = c.read_for(Duration::from_millis(150));
    if !extra.is_empty() {
        out.extend_from_slice(b"<UNEXPECTED:");
        out.extend_from_slice(&extra);
        out.extend_from_slice(b">");
    }
}

/// Sends `payload` as one write, expects one error reply, then the connection closed; finally
/// checks that the server still serves a new connection.
fn protocol_error_case(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut c = RawConn::connect(port);
    let mut out = Vec::new();
    // A write may fail if the server already closed: that's fine.
    let _ = c.try_send(payload);
    match c.try_read_reply() {
        Ok(r) => out.extend_from_slice(&r),
        Err(e) => out.extend_from_slice(format!("<{}>", describe_read_error(&e)).as_bytes()),
    }
    closed_marker(&mut c, &mut out);
    let mut c2 = RawConn::connect(port);
    out.extend_from_slice(&c2.cmd_str("PING"));
    out
}

// =============================================================================================

#[test]
fn pipeline_1000_commands_in_one_write() {
    let p = setup("pipeline_1000_commands_in_one_write");
    let mut payload = Vec::new();
    let mut expected = Vec::new();
    let mut counter = 0;
    for i in 0..1000 {
        match i % 5 {
            0 => {
                payload.extend(encode(&[
                    b"SET",
                    format!("key:{i}").as_bytes(),
                    format!("val{i}").as_bytes(),
                ]));
                expected.extend_from_slice(b"+OK\r\n");
            }
            1 => {
                let v = format!("val{}", i - 1);
                payload.extend(encode(&[b"GET", format!("key:{}", i - 1).as_bytes()]));
                expected.extend(format!("${}\r\n{v}\r\n", v.len()).into_bytes());
            }
            2 => {
                counter += 1;
                payload.extend(encode(&[b"INCR", b"{c}counter"]));
                expected.extend(format!(":{counter}\r\n").into_bytes());
            }
            3 => {
                payload.extend_from_slice(b"PING\r\n"); // inline, mixed into the pipeline
                expected.extend_from_slice(b"+PONG\r\n");
            }
            _ => {
                let v = format!("val{}", i - 4);
                payload.extend(encode(&[
                    b"MGET",
                    format!("key:{}", i - 4).as_bytes(),
                    b"nokey",
                    b"{c}counter",
                ]));
                expected.extend(
                    format!(
                        "*3\r\n${}\r\n{v}\r\n$-1\r\n${}\r\n{counter}\r\n",
                        v.len(),
                        counter.to_string().len()
                    )
                    .into_bytes(),
                );
            }
        }
    }
    payload.extend(encode(&[b"DBSIZE"]));
    expected.extend_from_slice(b":201\r\n");
    p.check(
        "1000 mixed commands, one write, replies in order",
        &expected,
        |port| {
            let mut c = RawConn::connect(port);
            let mut w = c.stream.try_clone().unwrap();
            let data = payload.clone();
            let writer = std::thread::spawn(move || w.write_all(&data));
            let mut out = Vec::new();
            for _ in 0..1001 {
                match c.try_read_reply() {
                    Ok(r) => out.extend_from_slice(&r),
                    Err(e) => {
                        out.extend_from_slice(format!("<{}>", describe_read_error(&e)).as_bytes());
                        break;
                    }
                }
            }
            writer.join().unwrap().unwrap();
            nothing_more(&mut c, &mut out);
            out
        },
    );
    p.check(
        "1000 PINGs as one RESP write, read all at the end",
        &b"+PONG\r\n".repeat(1000),
        |port| {
            let mut c = RawConn::connect(port);
            c.send(&encode(&[b"PING"]).repeat(1000));
            let mut out = Vec::new();
            for _ in 0..1000 {
                out.extend(c.read_reply());
            }
            out
        },
    );
}

#[test]
fn inline_commands() {
    let p = setup("inline_commands");
    p.check("PING", b"+PONG\r\n", |port| {
        send_read(&mut RawConn::connect(port), b"PING\r\n", 1)
    });
    p.check("lowercase ping, bare LF", b"+PONG\r\n+PONG\r\n", |port| {
        send_read(&mut RawConn::connect(port), b"ping\r\nPING\n", 2)
    });
    p.check(
        "quoted value with space",
        b"+OK\r\n$11\r\nhello world\r\n",
        |port| {
            send_read(
                &mut RawConn::connect(port),
                b"SET a \"hello world\"\r\nGET a\r\n",
                2,
            )
        },
    );
    p.check(
        "empty and blank lines are ignored",
        b"+PONG\r\n+PONG\r\n",
        |port| {
            let mut c = RawConn::connect(port);
            let mut out = send_read(&mut c, b"\r\n\r\n\nPING\r\n", 1);
            out.extend(send_read(&mut c, b"   \r\n\t\r\nPING\r\n", 1));
            nothing_more(&mut c, &mut out);
            out
        },
    );
    p.check(
        "extra spaces, tabs, quoted command name",
        b"+PONG\r\n$1\r\na\r\n+PONG\r\n",
        |port| {
            send_read(
                &mut RawConn::connect(port),
                b"   PING   \r\nECHO\ta\r\n\"PING\"\r\n",
                3,
            )
        },
    );
    p.check(
        "escapes in double quotes, single quotes",
        b"$5\r\naA\n\t\"\r\n$13\r\nsingle quoted\r\n$4\r\na\"b'\r\n$0\r\n\r\n",
        |port| {
            send_read(
                &mut RawConn::connect(port),
                b"ECHO \"a\\x41\\n\\t\\\"\"\r\nECHO 'single quoted'\r\nECHO 'a\"b\\''\r\nECHO \"\"\r\n",
                4,
            )
        },
    );
    p.check(
        "errors over inline",
        b"-ERR wrong number of arguments for 'get' command\r\n-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n",
        |port| send_read(&mut RawConn::connect(port), b"GET\r\nNOPE x\r\n", 2),
    );
    p.check(
        "inline and multibulk mixed in one write",
        b"+PONG\r\n+PONG\r\n$2\r\nhi\r\n+OK\r\n$1\r\n1\r\n",
        |port| {
            send_read(
                &mut RawConn::connect(port),
                b"PING\r\n*1\r\n$4\r\nPING\r\nECHO hi\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\nGET x\r\n",
                5,
            )
        },
    );
    p.check(
        "unbalanced quotes close the connection",
        b"-ERR Protocol error: unbalanced quotes in request\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"SET a \"hello\r\n"),
    );
    p.check(
        "closing quote followed by a non-space",
        b"-ERR Protocol error: unbalanced quotes in request\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"ECHO \"a\"b\r\n"),
    );
    p.check(
        "single quotes followed by a non-space",
        b"-ERR Protocol error: unbalanced quotes in request\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"ECHO 'it''s'\r\n"),
    );
    p.check(
        "too big inline request (64 KiB without newline)",
        b"-ERR Protocol error: too big inline request\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, &vec![b'a'; 70_000]),
    );
}

#[test]
fn command_split_at_every_byte_boundary() {
    let p = setup("command_split_at_every_byte_boundary");
    let set = encode(&[b"SET", b"key", b"he\r\nl\x00o"]);
    let get = encode(&[b"GET", b"key"]);
    let n = set.len() - 1;
    let mut expected = b"+OK\r\n".repeat(n);
    expected.extend_from_slice(b"$7\r\nhe\r\nl\x00o\r\n");
    p.check(
        "SET split into two writes at every offset",
        &expected,
        |port| {
            let mut c = RawConn::connect(port);
            let mut out = Vec::new();
            for i in 1..set.len() {
                c.send(&set[..i]);
                std::thread::sleep(Duration::from_millis(2));
                c.send(&set[i..]);
                out.extend(c.read_reply());
            }
            out.extend(c.cmd(&[b"GET", b"key"]));
            out
        },
    );
    p.check(
        "multibulk and inline sent byte by byte",
        b"$7\r\nhe\r\nl\x00o\r\n+PONG\r\n",
        |port| {
            let mut c = RawConn::connect(port);
            c.cmd(&[b"SET", b"key", b"he\r\nl\x00o"]);
            let mut out = Vec::new();
            for part in [&get[..], b"PING\r\n"] {
                for b in part {
                    c.send(std::slice::from_ref(b));
                    std::thread::sleep(Duration::from_millis(1));
                }
                out.extend(c.read_reply());
            }
            out
        },
    );
}

#[test]
fn multibulk_edge_cases() {
    let p = setup("multibulk_edge_cases");
    p.check("*-1, *0 and *-2 are ignored", b"+PONG\r\n", |port| {
        let mut c = RawConn::connect(port);
        let mut out = send_read(&mut c, b"*-1\r\n*0\r\n*-2\r\n*1\r\n$4\r\nPING\r\n", 1);
        nothing_more(&mut c, &mut out);
        out
    });
    p.check("empty bulk argument", b"$0\r\n\r\n", |port| {
        send_read(
            &mut RawConn::connect(port),
            b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
            1,
        )
    });
    p.check(
        "lowercase/mixed-case command names",
        b"+PONG\r\n+PONG\r\n",
        |port| {
            send_read(
                &mut RawConn::connect(port),
                b"*1\r\n$4\r\nping\r\n*1\r\n$4\r\nPiNg\r\n",
                2,
            )
        },
    );
    p.check(
        "invalid multibulk length",
        b"-ERR Protocol error: invalid multibulk length\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"*abc\r\n"),
    );
    p.check(
        "multibulk length over INT_MAX",
        b"-ERR Protocol error: invalid multibulk length\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"*2147483648\r\n"),
    );
    p.check(
        "expected '$'",
        b"-ERR Protocol error: expected '$', got 'f'\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"*1\r\nfoo\r\n"),
    );
    p.check(
        "invalid bulk length (not a number)",
        b"-ERR Protocol error: invalid bulk length\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"*1\r\n$abc\r\n"),
    );
    p.check(
        "invalid bulk length (negative)",
        b"-ERR Protocol error: invalid bulk length\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"*1\r\n$-1\r\n"),
    );
    p.check(
        "bulk length over proto-max-bulk-len",
        b"-ERR Protocol error: invalid bulk length\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, b"*1\r\n$600000000\r\n"),
    );
    p.check(
        "too big mbulk count string",
        b"-ERR Protocol error: too big mbulk count string\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, &[b"*".as_slice(), &vec![b'1'; 70_000]].concat()),
    );
    p.check(
        "too big bulk count string",
        b"-ERR Protocol error: too big bulk count string\r\n<EOF>+PONG\r\n",
        |port| protocol_error_case(port, &[b"*1\r\n$".as_slice(), &vec![b'1'; 70_000]].concat()),
    );
    p.check(
        "commands before a protocol error are answered",
        b"+PONG\r\n+OK\r\n-ERR Protocol error: invalid multibulk length\r\n<EOF>",
        |port| {
            let mut c = RawConn::connect(port);
            let mut out = send_read(
                &mut c,
                b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\n1\r\n*x\r\n",
                3,
            );
            closed_marker(&mut c, &mut out);
            out
        },
    );
    p.check("1 MiB bulk argument", b"+OK\r\n:1048576\r\n", |port| {
        let mut c = RawConn::connect(port);
        let big = vec![b'z'; 1 << 20];
        let mut out = c.cmd(&[b"SET", b"big", &big]);
        out.extend(c.cmd(&[b"STRLEN", b"big"]));
        let got = c.cmd(&[b"GET", b"big"]);
        if got != [format!("${}\r\n", big.len()).as_bytes(), &big, b"\r\n"].concat() {
            out.extend_from_slice(b"<GET big returned wrong bytes>");
        }
        out
    });
    p.check(
        "client closing mid-command does not disturb others",
        b"+PONG\r\n$-1\r\n",
        |port| {
            let mut c = RawConn::connect(port);
            c.send(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\nabc");
            std::thread::sleep(Duration::from_millis(20));
            drop(c);
            let mut c2 = RawConn::connect(port);
            let mut out = c2.cmd_str("PING");
            out.extend(c2.cmd_str("GET half"));
            out
        },
    );
}

/// Redis does not verify the CRLF after a bulk payload (it skips two bytes). Kept separate so
/// it can be ignored if Tessera chooses to be stricter.
#[test]
fn bulk_trailing_crlf_is_not_verified() {
    let p = setup("bulk_trailing_crlf_is_not_verified");
    p.check(
        "bulk followed by 'xx' instead of CRLF",
        b"+PONG\r\n+PONG\r\n",
        |port| {
            send_read(
                &mut RawConn::connect(port),
                b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
                2,
            )
        },
    );
}

#[test]
fn slow_reader_does_not_block_others() {
    let p = setup("slow_reader_does_not_block_others");
    p.check(
        "huge pipeline never read; other client still served",
        b"+OK\r\n+PONG\r\n+OK\r\n$6\r\nstill!\r\n+PONG\r\n",
        |port| {
            let mut setup_conn = RawConn::connect(port);
            let value = vec![b'v'; 32 * 1024];
            let mut out = setup_conn.cmd(&[b"SET", b"bigval", &value]);
            // Flood: ~2000 GETs of a 32 KiB value (~64 MiB of replies) that are never read.
            let mut hog = RawConn::connect(port);
            hog.stream
                .set_write_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
            let chunk = encode(&[b"GET", b"bigval"]).repeat(100);
            for _ in 0..20 {
                if hog.try_send(&chunk).is_err() {
                    break; // the server stopped reading from us: fine
                }
            }
            std::thread::sleep(Duration::from_millis(100));
            let mut other = RawConn::connect(port);
            out.extend(other.cmd_str("PING"));
            out.extend(other.cmd_str("SET still still!"));
            out.extend(other.cmd_str("GET still"));
            drop(hog);
            std::thread::sleep(Duration::from_millis(50));
            let mut after = RawConn::connect(port);
            out.extend(after.cmd_str("PING"));
            out
        },
    );
}

#[test]
fn resp3_hello() {
    let p = setup("resp3_hello");
    p.check(
        "HELLO 3 map reply (id/server/version blanked), RESP3 nulls, HELLO 4",
        b"%{\"server\" => \"\", \"version\" => \"\", \"proto\" => (integer) 3, \"id\" => (integer) 0, \"mode\" => \"standalone\", \"role\" => \"master\", \"modules\" => []}\n_\r\n*2\r\n$1\r\n1\r\n_\r\n-NOPROTO unsupported protocol version\r\n_\r\n",
        |port| {
            let mut c = RawConn::connect(port);
            let hello = resp_parse(&c.cmd_str("HELLO 3"));
            let mut out = render(&normalize(hello, Norm::Hello)).into_bytes();
            out.push(b'\n');
            out.extend(c.cmd_str("GET missing"));
            c.cmd_str("SET one 1");
            out.extend(c.cmd_str("MGET one missing"));
            out.extend(c.cmd_str("HELLO 4"));
            out.extend(c.cmd_str("GET missing")); // still RESP3 after the failed HELLO
            out
        },
    );
    p.check(
        "HELLO errors and going back to RESP2",
        b"-NOPROTO unsupported protocol version\r\n-NOPROTO unsupported protocol version\r\n-ERR Protocol version is not an integer or out of range\r\n$-1\r\n[\"server\", \"\", \"version\", \"\", \"proto\", (integer) 2, \"id\", (integer) 0, \"mode\", \"standalone\", \"role\", \"master\", \"modules\", []]\n$-1\r\n$-1\r\n",
        |port| {
            let mut c = RawConn::connect(port);
            let mut out = c.cmd_str("HELLO 4");
            out.extend(c.cmd_str("HELLO 1"));
            out.extend(c.cmd_str("HELLO x"));
            out.extend(c.cmd_str("GET missing"));
            let hello = resp_parse(&c.cmd_str("HELLO 2"));
            out.extend(render(&normalize(hello, Norm::Hello)).into_bytes());
            out.push(b'\n');
            out.extend(c.cmd_str("GET missing"));
            c.cmd_str("HELLO 3");
            c.cmd_str("RESET"); // RESET goes back to RESP2
            out.extend(c.cmd_str("GET missing"));
            out
        },
    );
}

#[test]
fn quit_reset_and_client_reply() {
    let p = setup("quit_reset_and_client_reply");
    p.check(
        "QUIT replies +OK and closes",
        b"+OK\r\n<EOF>+OK\r\n<EOF>",
        |port| {
            let mut c = RawConn::connect(port);
            let mut out = send_read(&mut c, b"QUIT\r\n", 1);
            closed_marker(&mut c, &mut out);
            let mut c = RawConn::connect(port);
            out.extend(send_read(&mut c, &encode(&[b"QUIT", b"extra"]), 1));
            closed_marker(&mut c, &mut out);
            out
        },
    );
    p.check(
        "commands pipelined after QUIT are not executed",
        b"+OK\r\n<EOF>$-1\r\n",
        |port| {
            let mut c = RawConn::connect(port);
            let mut out = send_read(&mut c, b"QUIT\r\nSET afterquit 1\r\n", 1);
            closed_marker(&mut c, &mut out);
            out.extend(RawConn::connect(port).cmd_str("GET afterquit"));
            out
        },
    );
    p.check(
        "CLIENT REPLY OFF / SKIP / ON",
        b"+OK\r\n+PONG\r\n:3\r\n",
        |port| {
            let mut c = RawConn::connect(port);
            c.send(
                &[
                    encode(&[b"CLIENT", b"REPLY", b"OFF"]),
                    encode(&[b"PING"]),
                    encode(&[b"SET", b"r", b"1"]),
                    encode(&[b"CLIENT", b"REPLY", b"ON"]),
                    encode(&[b"CLIENT", b"REPLY", b"SKIP"]),
                    encode(&[b"INCR", b"r"]),
                    encode(&[b"PING"]),
                    encode(&[b"INCR", b"r"]),
                ]
                .concat(),
            );
            let mut out = Vec::new();
            for _ in 0..3 {
                out.extend(c.read_reply());
            }
            nothing_more(&mut c, &mut out);
            out
        },
    );
    p.check("RESET", b"+RESET\r\n$-1\r\n$-1\r\n", |port| {
        let mut c = RawConn::connect(port);
        c.cmd_str("SELECT 3");
        c.cmd_str("SET k v");
        c.cmd_str("CLIENT SETNAME n");
        c.cmd_str("HELLO 3");
        let mut out = c.cmd_str("RESET");
        out.extend(c.cmd_str("GET k"));
        out.extend(c.cmd_str("CLIENT GETNAME"));
        out
    });
}
