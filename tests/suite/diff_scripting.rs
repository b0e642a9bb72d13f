//! Differential tests of Lua scripting (EVAL/EVALSHA/_RO, SCRIPT, FUNCTION, FCALL) against
//! redis-server, with 1 and 4 shards. Keys are untagged on purpose: with 4 shards, scripts
//! that declare several keys span shards, and scripts that build key names reach other shards
//! (escalation to global mode).

use crate::common::*;

fn eval(d: &mut Diff, script: &str, keys: &[&str], args: &[&str]) -> Vec<u8> {
    let n = keys.len().to_string();
    let mut v: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), n.as_bytes()];
    v.extend(keys.iter().map(|k| k.as_bytes()));
    v.extend(args.iter().map(|a| a.as_bytes()));
    d.cmd(&v)
}

#[test]
fn conversions_lua_to_redis_and_back() {
    let mut d = diff_or_skip!("conversions_lua_to_redis_and_back");
    for s in [
        "return 1",
        "return 3.99",
        "return -3.99",
        "return 1e20",
        "return 0/0",
        "return 'str'",
        "return true",
        "return false",
        "return nil",
        "return {1,2,3,'ciao',{1,2},nil,5}",
        "return {1,false,3}",
        "return {err='X y'}",
        "return {ok='fine'}",
        "return {ok='a\\r\\nb'}",
        "return redis.error_reply('no code')",
        "return redis.error_reply('-NC bar')",
        "return redis.status_reply('FINE')",
        "return redis.error_reply()",
        "return {double=3.5}",
        "return {double=0.1}",
        "return {map={a=1}}",
        "return {set={a=true}}",
        "return {big_number='123'}",
        "return {verbatim_string={format='txt',string='hi'}}",
        "return redis.call('get','nokey')",
        "return {redis.call('get','nokey')}",
        "return redis.call('ping')",
        "return redis.call('hgetall','nohash')",
        "return type(redis.call('ping'))",
        "return redis.call('ping').ok",
        "return redis.pcall('incr','nosuchkeyxx','x')",
        "redis.setresp(3) return redis.call('hgetall','nohash')",
        "redis.setresp(3) return true",
        "redis.setresp(3) return false",
        "redis.setresp(3) return {1, redis.call('get','nokey'), 2}",
    ] {
        eval(&mut d, s, &[], &[]);
    }
    d.script(&["HSET h a 1", "ZADD z 1.5 m", "SET s x"]);
    for s in [
        "redis.setresp(3) return redis.call('hgetall','h')",
        "redis.setresp(3) local t = redis.call('hgetall','h') return type(t.map)",
        "redis.setresp(3) return redis.call('zscore','z','m')",
        "redis.setresp(3) return redis.call('zscore','z','m').double",
        "return redis.call('zscore','z','m')",
        "return redis.pcall('incr','s')",
        "return redis.pcall('incr','s').err",
        "return {redis.call('type','h'), redis.call('type','nokey')}",
        "return redis.call('type','h').ok",
    ] {
        eval(&mut d, s, &[], &[]);
    }
    d.section("RESP3 client");
    d.s_norm("HELLO 3", Norm::Hello);
    for s in [
        "return {double=3.5}",
        "return {map={a=1}}",
        "return {set={a=true}}",
        "return {big_number='123'}",
        "return {verbatim_string={format='txt',string='hi'}}",
        "return true",
        "return false",
        "return nil",
        "redis.setresp(3) return true",
        "redis.setresp(3) return redis.call('hgetall','h')",
        "redis.setresp(3) return redis.call('get','nokey')",
    ] {
        eval(&mut d, s, &[], &[]);
    }
    d.s_norm("HELLO 2", Norm::Hello);
}

#[test]
fn errors_and_sandbox() {
    let mut d = diff_or_skip!("errors_and_sandbox");
    d.s("SET s x");
    for s in [
        "retur 1",
        "error('x')",
        "error({err='MY boom'})",
        "return redis.call('nosuch')",
        "return redis.call('incr','a','b')",
        "return redis.call('incr','s')",
        "return redis.call()",
        "return redis.call({})",
        "return redis.call('eval','return 1','0')",
        "return redis.call('multi')",
        "return redis.call('client','id')",
        "return redis.sha1hex()",
        "return redis.sha1hex('')",
        "return redis.setresp(4)",
        "return redis.setresp()",
        "return redis.log()",
        "return redis.log('a','b')",
        "return redis.log(99,'b')",
        "return redis.log(redis.LOG_WARNING,'from a test')",
        "return redis.set_repl(99)",
        "return redis.set_repl()",
        "return redis.set_repl(redis.REPL_ALL)",
        "return redis.replicate_commands()",
        "a = 5",
        "return b",
        "return os",
        "return io",
        "return loadfile",
        "return dofile",
        "return print",
        "return require",
        "return getfenv",
        "rawset(_G,'x',1) return 1",
        "setmetatable(_G, nil) return 1",
        "string.x = 1 return 1",
        "redis.call = nil return 1",
        "return type(getmetatable(_G))",
        "return string.nonexist",
        "return rawget(string, 'format') ~= nil",
        "local s = {} for k in pairs(_G) do s[#s+1]=k end table.sort(s) return table.concat(s,',')",
        "local s = {} for k in pairs(redis) do s[#s+1]=k end table.sort(s) return table.concat(s,',')",
        "return {pcall(function() error('x') end)}",
        "return {pcall(function() error({err='E x'}) end)}",
        "return {pcall(function() redis.call('nosuch') end)}",
        "return {pcall(redis.call, 'incr', 's')}",
        "return redis.pcall('nosuch')",
        "local t = {} t.x = 1 return t.x",
        "return _VERSION",
        "return redis.REDIS_VERSION",
        "return redis.REDIS_VERSION_NUM",
        "return loadstring('return 1')()",
        "return ('x'):rep(3)",
        "math.randomseed(7) return {math.random(100), math.random(5, 9)}",
        "return math.random(0)",
        "local function f() error('deep') end\nlocal x = 1\nf()",
        "\n\nreturn nil + 1",
        "#!lua\nerror('x')",
        "#!lua flags=no-writes\nreturn redis.call('set','a','b')",
        "#!lua name=x\nreturn 1",
        "#!lua flags=bad\nreturn 1",
        "#!js\nreturn 1",
        "#!lua flags=allow-oom,no-writes,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 1",
    ] {
        eval(&mut d, s, &[], &[]);
    }
    d.section("numkeys and EVALSHA");
    d.script(&[
        "EVAL x -1",
        "EVAL x 2 a",
        "EVAL x notanumber",
        "EVAL",
        "EVALSHA ffffffffffffffffffffffffffffffffffffffff 0",
        "EVALSHA abc 0",
        "EVALSHA_RO ffffffffffffffffffffffffffffffffffffffff 0",
    ]);
    d.cmd(&[
        b"EVAL_RO",
        b"return redis.call('set',KEYS[1],'b')",
        b"1",
        b"a",
    ]);
    d.cmd(&[b"EVAL_RO", b"return redis.call('get',KEYS[1])", b"1", b"s"]);
}

#[test]
fn script_command() {
    let mut d = diff_or_skip!("script_command");
    d.cmd(&[b"SCRIPT", b"LOAD", b"return 1"]);
    d.cmd(&[b"SCRIPT", b"LOAD", b"retur 1"]);
    d.script(&[
        "SCRIPT EXISTS e0e1f9fabfc9d4800c877a703b823ac0578ff8db ffffffffffffffffffffffffffffffffffffffff",
        "SCRIPT EXISTS E0E1F9FABFC9D4800C877A703B823AC0578FF8DB",
        "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0",
        "EVALSHA E0E1F9FABFC9D4800C877A703B823AC0578FF8DB 0",
        "SCRIPT EXISTS",
        "SCRIPT FLUSH x",
        "SCRIPT FLUSH a b",
        "SCRIPT FLUSH ASYNC",
        "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0",
        "SCRIPT FLUSH SYNC",
        "SCRIPT FLUSH",
        "SCRIPT KILL",
        "SCRIPT HELP",
        "SCRIPT FOO",
        "SCRIPT",
        "FUNCTION KILL",
    ]);
    // A script loaded by EVAL is visible to EVALSHA on every connection (other shards).
    eval(&mut d, "return 'cached'", &[], &[]);
    let other = d.open_conn();
    d.use_conn(other);
    d.s("EVALSHA 1d5e3a5b7d7b0a9c37e1f6fcb8c8aa4d8ac0a4c3 0");
    let sha = eval(
        &mut d,
        "return redis.sha1hex('return \\'cached\\'')",
        &[],
        &[],
    );
    let sha = resp_parse(&sha).as_bytes().unwrap().to_vec();
    d.cmd(&[b"SCRIPT", b"EXISTS", &sha]);
    d.cmd(&[b"EVALSHA", &sha, b"0"]);
}

#[test]
fn libraries_round_trip() {
    let mut d = diff_or_skip!("libraries_round_trip");
    for s in [
        "return cjson.encode({string.char(127), '/', 'a\"b', 1.5, 0.1, 1e20, 100, -0.0, {}, {1,nil,3}, string.char(1), '\\n\\t\\r\\b\\f'})",
        "return cjson.encode({[1]=1,[20]=2})",
        "return cjson.encode({a={b=cjson.null}})",
        "return cjson.encode({a=1,[2]=3})",
        "return cjson.encode({[1.5]=1})",
        "return cjson.encode({[true]=1})",
        "return cjson.encode(function() end)",
        "return cjson.encode()",
        "return cjson.encode(1/0)",
        "return cjson.decode('[1,2,{\"a\":null}]')[3].a == cjson.null",
        "return cjson.decode('[1, 2.5e3, -0, 0x10, \"a\\\\/b\", true, false]')",
        "return cjson.decode('\"\\\\u00e9\\\\ud83d\\\\ude00\"')",
        "return cjson.decode('x')",
        "return cjson.decode('[1,')",
        "return cjson.decode('{1:2}')",
        "return cjson.decode('[1] x')",
        "return cjson.decode('{\"a\":1,}')",
        "return cjson.decode('\"abc')",
        "return cjson.decode('\"\\\\q\"')",
        "return cjson.decode(cjson.encode({k={1,2,{x='y'}}})).k[3].x",
        "return bit.tohex(65535, -4)",
        "return bit.band()",
        "return {bit.band(0xff, 0x0f, 3), bit.bor(1,2,4), bit.bxor(5,1), bit.bnot(0), bit.lshift(1, 33), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 8), bit.ror(0x12345678, 8), bit.bswap(0x12345678), bit.tobit(2^32+5), bit.tohex(-1), bit.tohex(255, 2)}",
        "return struct.pack('>I2', 300)",
        "return {struct.unpack('<i4 c0', struct.pack('<i4 c0', 3, 'abc'))}",
        "return struct.pack('q', 1)",
        "return struct.size('>iHd')",
        "return struct.size('s')",
        "return {struct.unpack('>!4 b i s f d', struct.pack('>!4 b i s f d', -3, 70000, 'hi', 0.5, 1.25))}",
        "return struct.unpack('>I4', 'ab')",
        "return struct.unpack('b', 'a', 0)",
        "return cmsgpack.pack({1,2,3}, 'abc', 1.5, -1, 300, {a=1}, 0.1, -200, 70000, 2^40, true, nil)",
        "return cmsgpack.pack()",
        "return {cmsgpack.unpack(cmsgpack.pack(1,'a',{1,2},{x={y='z'}}))}",
        "return cmsgpack.unpack('\\193')",
        "return cmsgpack.unpack('\\146\\1')",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1,2), 0)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2)}",
        "return cmsgpack.pack(string.rep('x', 40))",
        "return cmsgpack.unpack(cmsgpack.pack(string.rep('y', 300)))",
    ] {
        eval(&mut d, s, &[], &[]);
    }
}

#[test]
fn scripts_across_shards() {
    let mut d = diff_or_skip!("scripts_across_shards");
    d.script(&["MSET a 10 b 20 c 30 d 40", "RPUSH list x y z"]);
    d.section("declared keys spanning shards");
    let transfer = "local v = tonumber(redis.call('GET', KEYS[1])) \
        if v < tonumber(ARGV[1]) then return redis.error_reply('insufficient funds') end \
        redis.call('DECRBY', KEYS[1], ARGV[1]) \
        return redis.call('INCRBY', KEYS[2], ARGV[1])";
    eval(&mut d, transfer, &["a", "b"], &["5"]);
    eval(&mut d, transfer, &["c", "d"], &["50"]);
    eval(&mut d, transfer, &["d", "a"], &["40"]);
    d.s("MGET a b c d");
    eval(
        &mut d,
        "local t = {} for i, k in ipairs(KEYS) do t[i] = redis.call('GET', k) end return t",
        &["a", "b", "c", "d", "nokey"],
        &[],
    );
    eval(
        &mut d,
        "redis.call('RENAME', KEYS[1], KEYS[2]) return redis.call('LRANGE', KEYS[2], 0, -1)",
        &["list", "list2"],
        &[],
    );
    d.s("EXISTS list list2");
    d.section("undeclared keys on other shards");
    let build =
        "local n = 0 for i = 1, 20 do n = n + redis.call('INCR', 'counter:' .. i) end return n";
    eval(&mut d, build, &[], &[]);
    eval(&mut d, build, &[], &[]);
    d.s("MGET counter:1 counter:7 counter:20");
    let mixed = "redis.call('SET', KEYS[1], 'declared') \
        redis.call('SET', 'undeclared:' .. ARGV[1], 'u') \
        redis.call('HSET', 'h:' .. ARGV[1], 'f', KEYS[1]) \
        return {redis.call('GET', 'undeclared:' .. ARGV[1]), redis.call('HGETALL', 'h:' .. ARGV[1])}";
    for i in 0..6 {
        let k = format!("dk{}", i);
        let a = format!("{}", i);
        eval(&mut d, mixed, &[&k], &[&a]);
    }
    d.s("MGET dk0 dk3 undeclared:0 undeclared:5");
    d.s("HGETALL h:4");
    eval(&mut d, "return redis.call('DBSIZE')", &[], &[]);
    eval(
        &mut d,
        "local k = redis.call('KEYS', 'counter:1*') table.sort(k) return k",
        &[],
        &[],
    );
    eval(
        &mut d,
        "return redis.call('EXISTS', 'a', 'b', 'c', 'nokey')",
        &[],
        &[],
    );
    d.section("hash tags keep undeclared keys on the declared key's shard");
    eval(
        &mut d,
        "redis.call('SET', '{user1}:name', 'n') return redis.call('INCR', '{user1}:visits')",
        &["{user1}:id"],
        &[],
    );
    d.section("errors after writes keep the writes, like Redis");
    eval(
        &mut d,
        "redis.call('SET', KEYS[1], 'written') redis.call('INCR', 'x:' .. KEYS[1]) return redis.call('LPUSH', KEYS[1], 'x')",
        &["w1"],
        &[],
    );
    d.s("GET w1");
    d.s("GET x:w1");
    d.section("SELECT inside scripts");
    eval(
        &mut d,
        "redis.call('SELECT', 1) redis.call('SET', 'indb1', 'x') return redis.call('DBSIZE')",
        &[],
        &[],
    );
    d.s("SELECT 1");
    d.s("GET indb1");
    d.s("SELECT 0");
    d.s("GET indb1");
    d.section("inside MULTI");
    d.s("MULTI");
    eval(&mut d, "return redis.call('INCR', KEYS[1])", &["mc"], &[]);
    eval(&mut d, "return redis.call('INCR', 'mc')", &[], &[]);
    d.s("EXEC");
    d.section("FLUSHALL from a script");
    eval(&mut d, "return redis.call('FLUSHALL')", &[], &[]);
    d.s("DBSIZE");
}

#[test]
fn functions_and_fcall() {
    let mut d = diff_or_skip!("functions_and_fcall");
    let f = |d: &mut Diff, args: &[&str]| {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        d.cmd(&v);
    };
    f(&mut d, &["FUNCTION", "FLUSH"]);
    f(&mut d, &["FUNCTION", "LOAD", "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return redis.call('get', keys[1]) end)"]);
    f(
        &mut d,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return 1 end)",
        ],
    );
    f(
        &mut d,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib2\nredis.register_function('f1', function(keys, args) return 1 end)",
        ],
    );
    f(
        &mut d,
        &["FUNCTION", "LOAD", "#!lua name=lib3\nlocal x = 1"],
    );
    f(&mut d, &["FUNCTION", "LOAD", "return 1"]);
    f(&mut d, &["FUNCTION", "LOAD", "#!lua"]);
    f(&mut d, &["FUNCTION", "LOAD", "#!lua name=a b=c\n"]);
    f(&mut d, &["FUNCTION", "LOAD", "#!js name=a\n"]);
    f(
        &mut d,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib4\nredis.register_function('bad name', function() end)",
        ],
    );
    f(&mut d, &["FUNCTION", "LOAD", "#!lua name=lib4\nredis.register_function{function_name='ro', callback=function(keys, args) return redis.call('set','x','y') end, flags={'no-writes'}, description='d'}"]);
    f(&mut d, &["FUNCTION", "LOAD", "#!lua name=lib5\nredis.register_function{function_name='x5', callback=function() end, flags={'bad'}}"]);
    f(
        &mut d,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib5\nredis.register_function('x5')",
        ],
    );
    f(&mut d, &["FUNCTION", "LOAD", "#!lua name=lib5\nretur 1"]);
    f(&mut d, &["FUNCTION", "LOAD", "#!lua name=lib5\nx = 1"]);
    // Library order is the server's hash order in Redis: compare sorted.
    d.s_norm("FUNCTION LIST", Norm::Sorted);
    f(&mut d, &["FUNCTION", "LOAD", "REPLACE", "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return redis.call('get', keys[1]) end)\nredis.register_function('f2', function(keys, args) return {keys, args} end)"]);
    d.script(&[
        "FCALL f1 1 k",
        "SET k v",
        "FCALL f1 1 k",
        "FCALL f2 2 k1 k2 a1 a2",
        "FCALL ro 0",
        "FCALL_RO f1 1 k",
        "FCALL nope 0",
        "FCALL f1 x",
        "FCALL f1 -1",
        "FCALL f1 5 a",
        "FCALL f1 0",
        "FUNCTION LIST WITHCODE LIBRARYNAME lib*",
        "FUNCTION LIST LIBRARYNAME nomatch",
        "FUNCTION LIST bad",
        "FUNCTION DELETE nolib",
        "FUNCTION DELETE lib4",
        "FCALL ro 0",
        "FUNCTION STATS",
        "FUNCTION HELP",
        "FUNCTION FOO",
    ]);
    f(&mut d, &["FUNCTION", "LOAD", "#!lua name=lib6\nredis.register_function('e', function(keys, args) error('xx') end)\nredis.register_function('u', function(keys, args) local n = 0 for i = 1, 10 do n = n + redis.call('INCR', 'fk' .. i) end return n end)"]);
    d.script(&["FCALL e 0", "FCALL u 0", "FCALL u 0", "MGET fk1 fk10"]);
    d.s("FUNCTION DELETE mylib");
    // DUMP payloads differ (Tessera's own format); a DUMP/RESTORE round trip must work on each.
    d.each("FUNCTION DUMP + FLUSH + RESTORE", |t, conn| {
        let c = &mut t.conns[conn];
        let dump = c.cmd(&[b"FUNCTION", b"DUMP"]);
        let payload = resp_parse(&dump).as_bytes().unwrap().to_vec();
        let mut out = c.cmd(&[b"FUNCTION", b"FLUSH"]);
        out.extend(c.cmd(&[b"FCALL", b"u", b"0"]));
        out.extend(c.cmd(&[b"FUNCTION", b"RESTORE", &payload]));
        out.extend(c.cmd(&[b"FUNCTION", b"RESTORE", &payload]));
        out.extend(c.cmd(&[b"FUNCTION", b"RESTORE", &payload, b"REPLACE"]));
        out.extend(c.cmd(&[b"FCALL", b"u", b"0"]));
        out
    });
}

#[test]
fn sort_and_server_commands_from_scripts() {
    let mut d = diff_or_skip!("sort_and_server_commands_from_scripts");
    // Untagged keys: with 4 shards the list, the BY/GET pattern keys and the STORE destination
    // sit on different shards, so the runs escalate to global mode on the pattern keys.
    d.script(&[
        "RPUSH l 3 1 2",
        "MSET w_1 30 w_2 20 w_3 10 o_1 a o_2 b o_3 c",
        "HSET h_1 f x h_2 f y",
        "SADD s c a b 10 2",
    ]);
    for (s, keys) in [
        ("return redis.call('sort','l')", &[][..]),
        ("return redis.call('sort','l','desc')", &[]),
        ("return redis.call('sort','l','by','w_*')", &[]),
        ("return redis.call('sort','l','by','w_*')", &["l"]),
        (
            "return redis.call('sort','l','by','w_*','get','o_*','get','#','get','h_*->f')",
            &["l"],
        ),
        ("return redis.call('sort','l','get','w_*')", &[]),
        ("return redis.call('sort','l','by','w_*','store','dst')", &[]),
        ("return redis.call('lrange','dst',0,-1)", &[]),
        (
            "return redis.call('sort','l','by','w_*','get','o_*','store','d2')",
            &["l", "d2"],
        ),
        ("return redis.call('lrange','d2',0,-1)", &[]),
        ("return redis.call('sort_ro','l','by','w_*','get','o_*')", &["l"]),
        ("return redis.pcall('sort_ro','l','store','x')", &["l"]),
        ("return redis.call('sort','s','by','nosort')", &[]),
        ("return redis.call('sort','s','alpha','limit','1','2')", &[]),
        ("return redis.pcall('sort','s')", &[]),
        ("return redis.pcall('sort','s','by','w_*')", &[]),
        (
            "redis.call('set','w_1','0') return redis.call('sort','l','by','w_*','get','o_*')",
            &["l"],
        ),
        (
            "redis.call('rpush','l2','1','2','3') return redis.call('sort','l2','by','w_*','get','o_*')",
            &["l2"],
        ),
        // SWAPDB needs every shard; PUBSUB and COMMAND run from scripts as in Redis.
        ("return redis.call('swapdb','0','1')", &[]),
        ("return redis.call('dbsize')", &[]),
        ("return redis.call('swapdb','0','1')", &[]),
        ("return redis.pcall('swapdb','0','100')", &[]),
        ("return redis.pcall('swapdb','x','1')", &[]),
        ("return redis.call('pubsub','channels')", &[]),
        ("return redis.call('pubsub','numsub','a')", &[]),
        ("return redis.call('pubsub','numpat')", &[]),
        ("return redis.pcall('pubsub','nosuch')", &[]),
        ("return redis.pcall('pubsub','numpat','x')", &[]),
        ("return redis.call('command','count') > 0", &[]),
        ("return redis.pcall('command','count','x')", &[]),
        ("return redis.pcall('command','nosuch')", &[]),
        (
            "return redis.call('command','getkeys','sort','l','by','x','get','y')",
            &[],
        ),
    ] {
        eval(&mut d, s, keys, &[]);
    }
    d.script(&["LRANGE dst 0 -1", "DBSIZE"]);
    d.cmd(&[
        b"EVAL_RO",
        b"return redis.call('sort_ro','l','by','w_*')",
        b"1",
        b"l",
    ]);
    d.cmd(&[b"EVAL_RO", b"return redis.pcall('sort','l')", b"1", b"l"]);
    d.cmd(&[b"EVAL_RO", b"return redis.pcall('swapdb','0','1')", b"0"]);
}

#[test]
fn info_scan_slowlog_and_memory_from_scripts() {
    let mut d = diff_or_skip!("info_scan_slowlog_and_memory_from_scripts");
    // Untagged keys: with 4 shards every one of these needs every shard (or the key's owner),
    // so the runs escalate to global mode.
    d.script(&[
        // A slow moment of a loaded machine must not put an entry in either slow log.
        "CONFIG SET slowlog-log-slower-than -1",
        "MSET a 1 b 2 c 3 ab 4 abc 5",
        "HSET h f v",
        "SADD s x",
    ]);
    // Every key a SCAN loop sees, sorted (the walk's order is the tables' order).
    let scan_all = |opts: &str| {
        format!(
            "local t = {{}} local c = '0' \
             repeat local r = redis.call('scan', c{opts}) c = r[1] \
             for _, k in ipairs(r[2]) do t[#t + 1] = k end until c == '0' \
             table.sort(t) return t"
        )
    };
    for opts in [
        "",
        ", 'count', '1'",
        ", 'count', '1000'",
        ", 'match', 'a*'",
        ", 'match', 'a*', 'count', '2'",
        ", 'type', 'hash'",
        ", 'type', 'string', 'match', '*b*'",
    ] {
        eval(&mut d, &scan_all(opts), &[], &[]);
    }
    for (s, keys) in [
        ("return redis.call('info', 'keyspace')", &[][..]),
        ("return redis.call('info', 'keyspace')", &["a"]),
        ("return string.sub(redis.call('info'), 1, 9)", &[]),
        (
            "return string.sub(redis.call('info', 'server', 'clients'), 1, 9)",
            &[],
        ),
        ("return redis.call('info', 'nosuchsection')", &[]),
        ("return redis.pcall('scan', 'x')", &[]),
        ("return redis.pcall('scan', '0', 'count', '0')", &[]),
        ("return redis.pcall('scan', '0', 'foo')", &[]),
        ("return redis.pcall('scan', '0', 'count', 'x')", &[]),
        ("return redis.call('slowlog', 'reset')", &[]),
        ("return redis.call('slowlog', 'len')", &[]),
        ("return redis.call('slowlog', 'get')", &[]),
        ("return redis.call('slowlog', 'help')", &[]),
        ("return redis.pcall('slowlog', 'get', '-2')", &[]),
        ("return redis.pcall('slowlog', 'get', '1', '2')", &[]),
        ("return redis.pcall('slowlog', 'len', 'x')", &[]),
        ("return redis.pcall('slowlog', 'nosuch')", &[]),
        ("return redis.call('memory', 'usage', 'nokey')", &[]),
        (
            "return type(redis.call('memory', 'usage', 'h')) == 'number'",
            &[],
        ),
        (
            "return type(redis.call('memory', 'usage', 'a', 'samples', '5')) == 'number'",
            &["a"],
        ),
        (
            "return redis.pcall('memory', 'usage', 'a', 'samples', '-1')",
            &[],
        ),
        ("return redis.pcall('memory', 'usage', 'a', 'foo')", &[]),
        ("return redis.pcall('memory', 'nosuch')", &[]),
        ("return redis.pcall('memory', 'stats', 'x')", &[]),
        ("return redis.call('memory', 'stats')[1]", &[]),
        (
            "return string.sub(redis.call('memory', 'doctor'), 1, 2)",
            &[],
        ),
        ("return redis.call('memory', 'purge')", &[]),
        ("return redis.call('memory', 'help')", &[]),
    ] {
        eval(&mut d, s, keys, &[]);
    }
    // A read-only script may run all of them.
    d.cmd(&[b"EVAL_RO", scan_all(", 'match', 'a*'").as_bytes(), b"0"]);
    d.cmd(&[b"EVAL_RO", b"return redis.call('info', 'keyspace')", b"0"]);
    // RESP3 inside the script: INFO is a verbatim string there.
    eval(
        &mut d,
        "redis.setresp(3) return redis.call('info', 'keyspace')",
        &[],
        &[],
    );
}

#[test]
fn cjson_settings_hold_until_script_flush() {
    let mut d = diff_or_skip!("cjson_settings_hold_until_script_flush");
    // Settings made by one script hold for the next ones (one Lua state in Redis; one set of
    // settings for every shard in Tessera), and SCRIPT FLUSH restores the defaults.
    for s in [
        "return cjson.encode_max_depth(2)",
        "return {cjson.encode_sparse_array(true, 2, 5)}",
        "return cjson.encode_number_precision(3)",
        "return cjson.encode({1.23456789, 1.555})",
        "return cjson.encode_keep_buffer(false)",
        "return cjson.encode_invalid_numbers(true)",
        "return cjson.decode_invalid_numbers(false)",
        "return cjson.decode_max_depth(1)",
        "return cjson.encode({[1]=1,[2]=2,[5]=5})",
        "return cjson.encode({{1}})",
        "return cjson.encode({{{1}}})",
        "return cjson.encode({0/0, 1/0, -1/0})",
        "return cjson.decode('[[1]]')",
        "return cjson.encode({[1]=1,[20]=2})",
        "return {cjson.encode_sparse_array()}",
        "return cjson.encode_invalid_numbers('null')",
        "return cjson.encode({0/0, -1/0})",
        "return cjson.decode('[NaN]')",
        "return cjson.decode('[0x10]')",
        "return cjson.decode('[01]')",
        "return cjson.decode('[-inf]')",
        "return {cjson.encode_sparse_array('off', 0, 0)}",
        "return cjson.encode({[1]=1,[20]=2})",
        "local c = cjson.new() return {c.encode_number_precision(), cjson.encode_number_precision()}",
        "local c = cjson.new() c.encode_number_precision(2) return {c.encode({1.555}), cjson.encode({1.555})}",
        "return cjson.decode_invalid_numbers('on')",
        "return cjson.decode('[+1, -0x10, 00, Infinity]')",
        "return cjson.decode('+1')",
        // Argument errors, as lua-cjson words them.
        "return cjson.encode_number_precision(15)",
        "return cjson.encode_number_precision(0)",
        "return cjson.encode_max_depth(0)",
        "return cjson.encode_max_depth(1, 2)",
        "return cjson.encode_max_depth('x')",
        "return cjson.encode_max_depth('7')",
        "return cjson.encode_max_depth(2.7)",
        "return cjson.encode_keep_buffer('maybe')",
        "return cjson.encode_keep_buffer({})",
        "return cjson.encode_keep_buffer(1)",
        "return cjson.encode_sparse_array(true, -1)",
        "return cjson.encode_sparse_array(true, 1, -1)",
        "return {cjson.encode_sparse_array()}",
    ] {
        eval(&mut d, s, &[], &[]);
    }
    d.s("SCRIPT FLUSH");
    for s in [
        "return {cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision()}",
        "return {cjson.encode_sparse_array()}",
        "return {cjson.encode_keep_buffer(), cjson.encode_invalid_numbers(), cjson.decode_invalid_numbers()}",
        "return cjson.encode({1.23456789})",
        "return cjson.encode({[1]=1,[20]=2})",
    ] {
        eval(&mut d, s, &[], &[]);
    }
}

#[test]
fn shebangs_and_library_details() {
    let mut d = diff_or_skip!("shebangs_and_library_details");
    for s in [
        "#!lua",
        "#!lua flags=no-writes,\nreturn 1",
        "#!lua flags=\nreturn 1",
        "#!lua \"flags=no-writes\"\nreturn 1",
        "#!lua flags=no-writes,,allow-oom\nreturn 1",
        "#!lua 'x\nreturn 1",
        "return {double=0/0}",
        "return {double=-(0/0)}",
        "return redis.call('set','nk',0/0)",
        "return redis.call('get','nk')",
        "return cjson._NAME",
        "local c = cjson.new() return {type(c), type(c.encode), c.encode({1,2}), type(c.new), c._NAME, c._VERSION, c == cjson}",
        "local c = cjson.new() c.foo = 1 return {c.foo, c.decode('[1,2]')}",
        "return cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')",
        "return cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\254')",
        "return tostring(cmsgpack.unpack('\\207\\128\\0\\0\\0\\0\\0\\0\\1'))",
    ] {
        eval(&mut d, s, &[], &[]);
    }
    d.cmd(&[b"SCRIPT", b"LOAD", b"#!lua"]);
    d.s("SET a 1");
    for s in [
        "#!lua\nreturn redis.call('get','a')",
        "#!lua flags=allow-oom\nreturn 1",
        "#!lua flags=no-writes\nreturn redis.call('get','a')",
        "return redis.call('get','a')",
    ] {
        d.cmd(&[b"EVAL_RO", s.as_bytes(), b"1", b"a"]);
        let sha = d.cmd(&[b"SCRIPT", b"LOAD", s.as_bytes()]);
        let sha = resp_parse(&sha).as_bytes().unwrap().to_vec();
        d.cmd(&[b"EVALSHA_RO", &sha, b"1", b"a"]);
    }
    d.s_norm("HELLO 3", Norm::Hello);
    eval(&mut d, "return {double=0/0}", &[], &[]);
    eval(&mut d, "return {double=-(0/0)}", &[], &[]);
}

#[test]
fn function_load_environment_and_names() {
    let mut d = diff_or_skip!("function_load_environment_and_names");
    let load = |d: &mut Diff, code: &str| {
        d.cmd(&[b"FUNCTION", b"LOAD", code.as_bytes()]);
    };
    for code in [
        "#!lua name=x\nerror('boom')",
        "#!lua name=x2\nredis.call('ping')",
        "#!lua name=x3\nreturn redis.setresp(3)",
        "#!lua name=x4\nlocal a = redis.sha1hex('x') redis.register_function('zz', function() return a end)",
        "#!lua name=x5\nfor k in pairs({1}) do end",
        "#!lua name=x5\nlocal r = math.random()",
        "#!lua name=x5\nreturn _G",
        "#!lua name=x5\nx = 1",
        "#!lua name=x5\nredis.x = 1",
        "#!lua name=lib6\nredis.log(redis.LOG_WARNING, 'loading') redis.register_function('x6', function() return redis.REDIS_VERSION end)",
        "#!lua name=lib7\nlocal t = redis.LOG_DEBUG redis.register_function{function_name='x7', callback=function() return type(redis.register_function) end}",
        "#!lua name=lib8\nredis.register_function('x8', function() return {type(redis.call), type(redis.setresp), type(redis.log)} end)",
        "#!lua name=lib9 name=lib10\nreturn 1",
        "#!lua\nreturn 1",
        "#!lua name=lib9",
        "#!lua name=l-x\nreturn 1",
        "#!foo name=l-x\nreturn 1",
        "#!foo name=lx\nreturn 1",
        "#!lua name=\"lx\"\nredis.register_function('qq', function() return 0 end)",
        "#!lua NAME=lib5\nredis.register_function('G1', function() return 5 end)",
        "#!lua name=lib11\nredis.register_function('g1', function() return 11 end)",
    ] {
        load(&mut d, code);
    }
    d.cmd(&[
        b"FUNCTION",
        b"LOAD",
        b"REPLACE",
        b"#!lua name=LX\nredis.register_function('Qq', function() return 0 end)",
    ]);
    d.script(&[
        "FCALL x6 0",
        "FCALL x7 0",
        "FCALL X8 0",
        "FCALL_RO x8 0",
        "FCALL g1 0",
        "FCALL QQ 0",
        "FUNCTION LIST LIBRARYNAME LIB8",
        "FUNCTION LIST LIBRARYNAME Lx",
        "FUNCTION DELETE LX",
        "FUNCTION DELETE lx",
        "FCALL qq 0",
        "MULTI",
        "FCALL nosuch 0",
        "FCALL nosuch -1",
        "FCALL x8 -1",
        "EXEC",
        "FUNCTION FLUSH SYNC x",
        "FUNCTION FLUSH x",
        "FUNCTION RESTORE x FLUSH x",
        "FUNCTION RESTORE x",
        "FUNCTION RESTORE 0123456789",
        "FUNCTION RESTORE",
    ]);
}

#[test]
fn function_dump_payloads_move_between_redis_and_tessera() {
    let mut d = diff_or_skip!("function_dump_payloads_move_between_redis_and_tessera");
    d.s("FUNCTION DUMP");
    d.cmd(&[
        b"FUNCTION",
        b"LOAD",
        b"#!lua name=dl\nredis.register_function('dfn', function() return 'a function body long enough to compress' end)",
    ]);
    // One library: the payloads are byte-identical (FUNCTION2 record, version, CRC64).
    let from_redis = resp_parse(&d.s("FUNCTION DUMP"))
        .as_bytes()
        .unwrap()
        .to_vec();
    let port = d.targets[1].server.port;
    let mut tessera = RawConn::connect(port);
    let from_tessera = resp_parse(&tessera.cmd(&[b"FUNCTION", b"DUMP"]))
        .as_bytes()
        .unwrap()
        .to_vec();
    assert_eq!(from_redis, from_tessera);
    let mut corrupt = from_redis.clone();
    corrupt[5] ^= 1;
    for payload in [&from_redis, &from_tessera] {
        d.s("FUNCTION FLUSH");
        d.cmd(&[b"FUNCTION", b"RESTORE", payload]);
        d.s("FCALL dfn 0");
        d.cmd(&[b"FUNCTION", b"RESTORE", payload]);
        d.cmd(&[b"FUNCTION", b"RESTORE", payload, b"REPLACE"]);
        d.cmd(&[b"FUNCTION", b"RESTORE", &corrupt, b"REPLACE"]);
        d.cmd(&[b"FUNCTION", b"RESTORE", &payload[..5]]);
    }
    // Two libraries from Redis (its hash order) restore into Tessera and back.
    d.cmd(&[
        b"FUNCTION",
        b"LOAD",
        b"#!lua name=ab\nredis.register_function('afn', function() return 2 end)",
    ]);
    let two = resp_parse(&d.targets[0].conns[0].cmd(&[b"FUNCTION", b"DUMP"]))
        .as_bytes()
        .unwrap()
        .to_vec();
    d.cmd(&[b"FUNCTION", b"RESTORE", &two, b"FLUSH"]);
    d.script(&["FCALL afn 0", "FCALL dfn 0"]);
    d.s_norm("FUNCTION LIST", Norm::Sorted);
    let back = resp_parse(&tessera.cmd(&[b"FUNCTION", b"DUMP"]))
        .as_bytes()
        .unwrap()
        .to_vec();
    d.cmd(&[b"FUNCTION", b"RESTORE", &back, b"FLUSH"]);
    d.script(&["FCALL afn 0", "FCALL dfn 0"]);
}

/// While a script runs past busy-reply-threshold, every client hears from the server, those of
/// the script's own shard too (with one shard, all of them): -BUSY, errors for unknown
/// commands and bad arity, SHUTDOWN refused without NOSAVE, and SCRIPT KILL from an open or a
/// new connection stops the script.
#[test]
fn busy_script_answers_every_client_and_script_kill_stops_it() {
    compare_transcripts("busy_script_answers_every_client", |port| {
        let mut log = Vec::new();
        let mut runner = RawConn::connect(port);
        let mut other = RawConn::connect(port);
        logged_cmd(&mut other, &mut log, "CONFIG SET busy-reply-threshold 100");
        logged_cmd(&mut other, &mut log, "SET k v");
        let spin = "local i = 0 while true do i = i + 1 end";
        let refs: Vec<&[u8]> = vec![b"EVAL", spin.as_bytes(), b"0"];
        runner.send(&encode(&refs));
        // Until the script is busy, shards other than its own still serve as usual.
        let mut probe = RawConn::connect(port);
        loop {
            send_line(&mut probe, "PING");
            if probe.read_reply().starts_with(b"-BUSY") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Pipelined behind one another, answered in order.
        for line in [
            "PING",
            "GET k",
            "NOSUCH x",
            "SCRIPT KILL x",
            "FUNCTION KILL",
            "SHUTDOWN",
            "CONFIG NOSUCH",
            "CONFIG GET",
            "SCRIPT FLUSH",
        ] {
            send_line(&mut other, line);
        }
        for _ in 0..9 {
            log.push(format!("other: {}", render_raw(&other.read_reply())));
        }
        let mut fresh = RawConn::connect(port);
        logged_cmd(&mut fresh, &mut log, "SCRIPT KILL");
        log.push(format!("runner: {}", render_raw(&runner.read_reply())));
        logged_cmd(&mut other, &mut log, "GET k");
        logged_cmd(&mut fresh, &mut log, "SCRIPT KILL");
        logged_args(&mut runner, &mut log, &["EVAL", "return 1", "0"]);
        logged_cmd(&mut other, &mut log, "CONFIG SET busy-reply-threshold 5000");
        log
    });
}

/// A script that escalates to global mode (it builds key names on other shards) runs twice
/// with 4 shards: the statistics count its commands once, as Redis's single run does
/// (commandstats, errorstats, keyspace hits and misses).
#[test]
fn an_escalated_script_counts_its_commands_once() {
    let mut d = diff_or_skip!("an_escalated_script_counts_its_commands_once");
    d.script(&["SET present 1", "CONFIG RESETSTAT"]);
    // New script bodies each time: a script already known to need global mode goes straight
    // there.
    for i in 0..3 {
        eval(
            &mut d,
            &format!(
                "for _,k in ipairs({{'a','b','c','d','e','f','g','h'}}) do \
                 redis.call('set', k..'{i}', 'v') end \
                 redis.call('get', 'present') redis.call('get', 'absent{i}') \
                 redis.pcall('incr', 'a{i}') return {i}"
            ),
            &[],
            &[],
        );
    }
    d.each("INFO commandstats (counts)", |t, active| {
        let raw = t.conns[active].cmd_str("INFO commandstats");
        commandstats_counts(&raw).join("\n").into_bytes()
    });
    d.each("keyspace hits and misses, errorstats", |t, active| {
        let raw = t.conns[active].cmd_str("INFO everything");
        let text = String::from_utf8_lossy(&raw).to_string();
        text.lines()
            .filter(|l| {
                l.starts_with("keyspace_")
                    || l.starts_with("errorstat_")
                    || l.starts_with("total_error")
            })
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes()
    });
}
