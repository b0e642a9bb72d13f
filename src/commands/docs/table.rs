//! The argument tree and history of every command and subcommand Tessera has, in the language
//! `super` documents, in the command table's order (each container followed by its
//! subcommands). Arguments and versions are Redis 7.0's interface facts; the history texts are
//! Tessera's own. Never consulted while a command runs.

use super::{d, DocEntry};

pub(super) const DOCS: &[DocEntry] = &[
    // connection
    d("ping", "?message:string"),
    d("echo", "message:string"),
    d("quit", ""),
    d(
        "hello",
        "?arguments:block(protover:integer ?username_password:block=AUTH(username:string \
        password:string) ?clientname:string=SETNAME)",
    )
    .history(&[(
        "6.2.0",
        "protover is optional: alone, HELLO describes the connection.",
    )]),
    d("auth", "?username:string@6.0.0 password:string")
        .history(&[("6.0.0", "A username, for ACL users.")]),
    d("select", "index:integer"),
    d("reset", ""),
    d("client", ""),
    d(
        "client|tracking",
        "status:oneof(ON OFF) ?client-id:integer=REDIRECT ?*+prefix:string=PREFIX ?BCAST ?OPTIN \
        ?OPTOUT ?NOLOOP",
    ),
    d("client|getredir", ""),
    d(
        "client|kill",
        "filter:oneof(ip:port:string!2.8.12 *new-format:oneof(?client-id:integer=ID@2.8.12 \
        ?normal_master_slave_pubsub:oneof=TYPE@2.8.12(NORMAL MASTER@3.2.0 SLAVE REPLICA@5.0.0 \
        PUBSUB) ?username:string=USER ?ip:port:string=ADDR ?ip:port:string=LADDR@6.2.0 \
        ?yes/no:string=SKIPME))",
    )
    .history(&[
        ("2.8.12", "Filters as name-value pairs."),
        ("2.8.12", "ID filter."),
        ("3.2.0", "TYPE master."),
        ("5.0.0", "TYPE replica (slave still accepted)."),
        ("6.2.0", "LADDR filter."),
    ]),
    d(
        "client|list",
        "?normal_master_replica_pubsub:oneof=TYPE@5.0.0(NORMAL MASTER REPLICA PUBSUB) \
        ?id:block=ID@6.2.0(*client-id:integer)",
    )
    .history(&[
        ("2.8.12", "Field id."),
        ("5.0.0", "TYPE filter."),
        ("6.0.0", "Field user."),
        (
            "6.2.0",
            "Fields argv-mem, tot-mem, laddr and redir; ID filter.",
        ),
        ("7.0.0", "Fields resp, multi-mem, rbs and rbp."),
        ("7.0.3", "Field ssub."),
    ]),
    d(
        "client|pause",
        "timeout:integer ?mode:oneof@6.2.0(WRITE ALL)",
    )
    .history(&[("6.2.0", "WRITE mode.")]),
    d("client|reply", "on_off_skip:oneof(ON OFF SKIP)"),
    d("client|setname", "connection-name:string"),
    d("client|trackinginfo", ""),
    d("client|id", ""),
    d(
        "client|unblock",
        "client-id:integer ?timeout_error:oneof(TIMEOUT ERROR)",
    ),
    d("client|getname", ""),
    d("client|no-evict", "enabled:oneof(ON OFF)"),
    d("client|info", ""),
    d("client|help", ""),
    d("client|caching", "mode:oneof(YES NO)"),
    d("client|unpause", ""),
    // server
    d("command", ""),
    d("command|docs", "?*command-name:string"),
    d("command|getkeysandflags", ""),
    d("command|info", "?*command-name:string")
        .history(&[("7.0.0", "Without names, every command.")]),
    d("command|help", ""),
    d(
        "command|list",
        "?filterby:oneof=FILTERBY(module-name:string=MODULE category:string=ACLCAT \
        pattern:pattern=PATTERN)",
    ),
    d("command|count", ""),
    d("command|getkeys", ""),
    d("info", "?*section:string").history(&[("7.0.0", "Several sections in one call.")]),
    d("config", ""),
    d("config|rewrite", ""),
    d("config|resetstat", ""),
    d("config|help", ""),
    d("config|get", "*parameter:block(parameter:string)")
        .history(&[("7.0.0", "Several patterns in one call.")]),
    d(
        "config|set",
        "*parameter_value:block(parameter:string value:string)",
    )
    .history(&[("7.0.0", "Several parameters in one call.")]),
    d("slowlog", ""),
    d("slowlog|reset", ""),
    d("slowlog|len", ""),
    d("slowlog|help", ""),
    d("slowlog|get", "?count:integer")
        .history(&[("4.0.0", "Each entry names its client's address and name.")]),
    d("monitor", ""),
    d(
        "shutdown",
        "?nosave_save:oneof(NOSAVE SAVE) ?NOW@7.0.0 ?FORCE@7.0.0 ?ABORT@7.0.0",
    )
    .history(&[("7.0.0", "NOW, FORCE and ABORT.")]),
    d("debug", ""),
    // generic
    d("wait", "numreplicas:integer timeout:integer"),
    // server
    d("time", ""),
    d("lastsave", ""),
    d("role", ""),
    d("save", ""),
    d("bgsave", "?SCHEDULE@3.2.2").history(&[("3.2.2", "SCHEDULE.")]),
    d("bgrewriteaof", ""),
    // generic
    d("del", "*key:key#0"),
    d("unlink", "*key:key#0"),
    d("exists", "*key:key#0").history(&[("3.0.3", "Several keys in one call.")]),
    d("touch", "*key:key#0"),
    d("type", "key:key#0"),
    d(
        "expire",
        "key:key#0 seconds:integer ?condition:oneof@7.0.0(NX XX GT LT)",
    )
    .history(&[("7.0.0", "Conditions NX, XX, GT and LT.")]),
    d(
        "pexpire",
        "key:key#0 milliseconds:integer ?condition:oneof@7.0.0(NX XX GT LT)",
    )
    .history(&[("7.0.0", "Conditions NX, XX, GT and LT.")]),
    d(
        "expireat",
        "key:key#0 unix-time-seconds:unix-time ?condition:oneof@7.0.0(NX XX GT LT)",
    )
    .history(&[("7.0.0", "Conditions NX, XX, GT and LT.")]),
    d(
        "pexpireat",
        "key:key#0 unix-time-milliseconds:unix-time ?condition:oneof@7.0.0(NX XX GT LT)",
    )
    .history(&[("7.0.0", "Conditions NX, XX, GT and LT.")]),
    d("ttl", "key:key#0").history(&[("2.8.0", "-2 for a missing key.")]),
    d("pttl", "key:key#0").history(&[("2.8.0", "-2 for a missing key.")]),
    d("expiretime", "key:key#0"),
    d("pexpiretime", "key:key#0"),
    d("persist", "key:key#0"),
    d("rename", "key:key#0 newkey:key#1"),
    d("renamenx", "key:key#0 newkey:key#1")
        .history(&[("3.2.0", "Renaming a key to itself is no longer an error.")]),
    d(
        "copy",
        "source:key#0 destination:key#1 ?destination-db:integer=DB ?REPLACE",
    ),
    d("move", "key:key#0 db:integer"),
    d("object", ""),
    d("object|idletime", "key:key#0"),
    d("object|freq", "key:key#0"),
    d("object|help", ""),
    d("object|encoding", "key:key#0"),
    d("object|refcount", "key:key#0"),
    d("keys", "pattern:pattern"),
    d(
        "scan",
        "cursor:integer ?pattern:pattern=MATCH ?count:integer=COUNT ?type:string=TYPE@6.0.0",
    )
    .history(&[("6.0.0", "TYPE filter.")]),
    d("randomkey", ""),
    // server
    d("dbsize", ""),
    d("flushdb", "?async:oneof(ASYNC@4.0.0 SYNC@6.2.0)")
        .history(&[("4.0.0", "ASYNC."), ("6.2.0", "SYNC.")]),
    d("flushall", "?async:oneof(ASYNC@4.0.0 SYNC@6.2.0)")
        .history(&[("4.0.0", "ASYNC."), ("6.2.0", "SYNC.")]),
    d("swapdb", "index1:integer index2:integer"),
    // generic
    d("dump", "key:key#0"),
    d(
        "restore",
        "key:key#0 ttl:integer serialized-value:string ?REPLACE@3.0.0 ?ABSTTL@5.0.0 \
        ?seconds:integer=IDLETIME@5.0.0 ?frequency:integer=FREQ@5.0.0",
    )
    .history(&[
        ("3.0.0", "REPLACE."),
        ("5.0.0", "ABSTTL."),
        ("5.0.0", "IDLETIME and FREQ."),
    ]),
    // string
    d("get", "key:key#0"),
    d(
        "set",
        "key:key#0 value:string ?condition:oneof@2.6.12(NX XX) ?GET@6.2.0 \
        ?expiration:oneof(seconds:integer=EX@2.6.12 milliseconds:integer=PX@2.6.12 \
        unix-time-seconds:unix-time=EXAT@6.2.0 unix-time-milliseconds:unix-time=PXAT@6.2.0 \
        KEEPTTL@6.0.0)",
    )
    .history(&[
        ("2.6.12", "Options EX, PX, NX and XX."),
        ("6.0.0", "Option KEEPTTL."),
        ("6.2.0", "Options GET, EXAT and PXAT."),
        ("7.0.0", "NX may be combined with GET."),
    ]),
    d("setnx", "key:key#0 value:string"),
    d("setex", "key:key#0 seconds:integer value:string"),
    d("psetex", "key:key#0 milliseconds:integer value:string"),
    d("getset", "key:key#0 value:string"),
    d("getdel", "key:key#0"),
    d(
        "getex",
        "key:key#0 ?expiration:oneof(seconds:integer=EX milliseconds:integer=PX \
        unix-time-seconds:unix-time=EXAT unix-time-milliseconds:unix-time=PXAT PERSIST)",
    ),
    d("mget", "*key:key#0"),
    d("mset", "*key_value:block(key:key#0 value:string)"),
    d("msetnx", "*key_value:block(key:key#0 value:string)"),
    d("append", "key:key#0 value:string"),
    d("strlen", "key:key#0"),
    d("incr", "key:key#0"),
    d("decr", "key:key#0"),
    d("incrby", "key:key#0 increment:integer"),
    d("decrby", "key:key#0 decrement:integer"),
    d("incrbyfloat", "key:key#0 increment:double"),
    d("getrange", "key:key#0 start:integer end:integer"),
    d("substr", "key:key#0 start:integer end:integer"),
    d("setrange", "key:key#0 offset:integer value:string"),
    d(
        "lcs",
        "key1:key#0 key2:key#0 ?LEN ?IDX ?len:integer=MINMATCHLEN ?WITHMATCHLEN",
    ),
    // bitmap
    d("setbit", "key:key#0 offset:integer value:integer"),
    d("getbit", "key:key#0 offset:integer"),
    d(
        "bitcount",
        "key:key#0 ?index:block(start:integer end:integer ?index_unit:oneof@7.0.0(BYTE BIT))",
    )
    .history(&[("7.0.0", "BYTE and BIT units.")]),
    d(
        "bitpos",
        "key:key#0 bit:integer ?index:block(start:integer ?end_index:block(end:integer \
        ?index_unit:oneof@7.0.0(BYTE BIT)))",
    )
    .history(&[("7.0.0", "BYTE and BIT units.")]),
    d("bitop", "operation:string destkey:key#0 *key:key#1"),
    d(
        "bitfield",
        "key:key#0 ?*operation:oneof(encoding_offset:block=GET(encoding:string offset:integer) \
        write:block(?wrap_sat_fail:oneof=OVERFLOW(WRAP SAT FAIL) \
        write_operation:oneof(encoding_offset_value:block=SET(encoding:string offset:integer \
        value:integer) encoding_offset_increment:block=INCRBY(encoding:string offset:integer \
        increment:integer))))",
    ),
    d(
        "bitfield_ro",
        "key:key#0 ?*+encoding_offset:block=GET(encoding:string offset:integer)",
    ),
    // hash
    d(
        "hset",
        "key:key#0 *field_value:block(field:string value:string)",
    )
    .history(&[("4.0.0", "Several field-value pairs in one call.")]),
    d("hsetnx", "key:key#0 field:string value:string"),
    d("hget", "key:key#0 field:string"),
    d(
        "hmset",
        "key:key#0 *field_value:block(field:string value:string)",
    ),
    d("hmget", "key:key#0 *field:string"),
    d("hgetall", "key:key#0"),
    d("hdel", "key:key#0 *field:string").history(&[("2.4.0", "Several fields in one call.")]),
    d("hexists", "key:key#0 field:string"),
    d("hlen", "key:key#0"),
    d("hkeys", "key:key#0"),
    d("hvals", "key:key#0"),
    d("hincrby", "key:key#0 field:string increment:integer"),
    d("hincrbyfloat", "key:key#0 field:string increment:double"),
    d("hstrlen", "key:key#0 field:string"),
    d(
        "hrandfield",
        "key:key#0 ?options:block(count:integer ?WITHVALUES)",
    ),
    d(
        "hscan",
        "key:key#0 cursor:integer ?pattern:pattern=MATCH ?count:integer=COUNT",
    ),
    // list
    d("lpush", "key:key#0 *element:string").history(&[("2.4.0", "Several elements in one call.")]),
    d("rpush", "key:key#0 *element:string").history(&[("2.4.0", "Several elements in one call.")]),
    d("lpushx", "key:key#0 *element:string").history(&[("4.0.0", "Several elements in one call.")]),
    d("rpushx", "key:key#0 *element:string").history(&[("4.0.0", "Several elements in one call.")]),
    d("lpop", "key:key#0 ?count:integer@6.2.0").history(&[("6.2.0", "Optional count.")]),
    d("rpop", "key:key#0 ?count:integer@6.2.0").history(&[("6.2.0", "Optional count.")]),
    d("llen", "key:key#0"),
    d("lrange", "key:key#0 start:integer stop:integer"),
    d("lindex", "key:key#0 index:integer"),
    d("lset", "key:key#0 index:integer element:string"),
    d(
        "linsert",
        "key:key#0 where:oneof(BEFORE AFTER) pivot:string element:string",
    ),
    d("lrem", "key:key#0 count:integer element:string"),
    d("ltrim", "key:key#0 start:integer stop:integer"),
    d(
        "lpos",
        "key:key#0 element:string ?rank:integer=RANK ?num-matches:integer=COUNT \
        ?len:integer=MAXLEN",
    ),
    d(
        "lmove",
        "source:key#0 destination:key#1 wherefrom:oneof(LEFT RIGHT) whereto:oneof(LEFT RIGHT)",
    ),
    d("rpoplpush", "source:key#0 destination:key#1"),
    d(
        "lmpop",
        "numkeys:integer *key:key#0 where:oneof(LEFT RIGHT) ?count:integer=COUNT",
    ),
    d("blpop", "*key:key#0 timeout:double").history(&[("6.0.0", "Fractional timeouts.")]),
    d("brpop", "*key:key#0 timeout:double").history(&[("6.0.0", "Fractional timeouts.")]),
    d(
        "blmove",
        "source:key#0 destination:key#1 wherefrom:oneof(LEFT RIGHT) whereto:oneof(LEFT RIGHT) \
        timeout:double",
    ),
    d(
        "brpoplpush",
        "source:key#0 destination:key#1 timeout:double",
    )
    .history(&[("6.0.0", "Fractional timeouts.")]),
    d(
        "blmpop",
        "timeout:double numkeys:integer *key:key#0 where:oneof(LEFT RIGHT) ?count:integer=COUNT",
    ),
    // sorted-set
    d("bzpopmin", "*key:key#0 timeout:double").history(&[("6.0.0", "Fractional timeouts.")]),
    d("bzpopmax", "*key:key#0 timeout:double").history(&[("6.0.0", "Fractional timeouts.")]),
    d(
        "bzmpop",
        "timeout:double numkeys:integer *key:key#0 where:oneof(MIN MAX) ?count:integer=COUNT",
    ),
    // transactions
    d("multi", ""),
    d("exec", ""),
    d("discard", ""),
    d("watch", "*key:key#0"),
    d("unwatch", ""),
    // pubsub
    d("subscribe", "*channel:string"),
    d("psubscribe", "*pattern:block(pattern:pattern)"),
    d("ssubscribe", "*shardchannel:string"),
    d("unsubscribe", "?*channel:string"),
    d("punsubscribe", "?*pattern:pattern"),
    d("sunsubscribe", "?*shardchannel:string"),
    d("publish", "channel:string message:string"),
    d("spublish", "shardchannel:string message:string"),
    d("pubsub", ""),
    d("pubsub|shardchannels", "?pattern:pattern"),
    d("pubsub|help", ""),
    d("pubsub|numpat", ""),
    d("pubsub|numsub", "?*channel:string"),
    d("pubsub|shardnumsub", "?*shardchannel:string"),
    d("pubsub|channels", "?pattern:pattern"),
    // set
    d("sadd", "key:key#0 *member:string").history(&[("2.4.0", "Several members in one call.")]),
    d("srem", "key:key#0 *member:string").history(&[("2.4.0", "Several members in one call.")]),
    d("smembers", "key:key#0"),
    d("sismember", "key:key#0 member:string"),
    d("smismember", "key:key#0 *member:string"),
    d("scard", "key:key#0"),
    d("spop", "key:key#0 ?count:integer@3.2.0").history(&[("3.2.0", "Optional count.")]),
    d("srandmember", "key:key#0 ?count:integer@2.6.0").history(&[("2.6.0", "Optional count.")]),
    d("smove", "source:key#0 destination:key#1 member:string"),
    d("sinter", "*key:key#0"),
    d(
        "sintercard",
        "numkeys:integer *key:key#0 ?limit:integer=LIMIT",
    ),
    d("sinterstore", "destination:key#0 *key:key#1"),
    d("sunion", "*key:key#0"),
    d("sunionstore", "destination:key#0 *key:key#1"),
    d("sdiff", "*key:key#0"),
    d("sdiffstore", "destination:key#0 *key:key#1"),
    d(
        "sscan",
        "key:key#0 cursor:integer ?pattern:pattern=MATCH ?count:integer=COUNT",
    ),
    // sorted-set
    d(
        "zadd",
        "key:key#0 ?condition:oneof@3.0.2(NX XX) ?comparison:oneof@6.2.0(GT LT) ?change=CH@3.0.2 \
        ?increment=INCR@3.0.2 *score_member:block(score:double member:string)",
    )
    .history(&[
        ("2.4.0", "Several members in one call."),
        ("3.0.2", "XX, NX, CH and INCR."),
        ("6.2.0", "GT and LT."),
    ]),
    d("zincrby", "key:key#0 increment:integer member:string"),
    d("zrem", "key:key#0 *member:string").history(&[("2.4.0", "Several members in one call.")]),
    d("zcard", "key:key#0"),
    d("zcount", "key:key#0 min:double max:double"),
    d("zlexcount", "key:key#0 min:string max:string"),
    d("zscore", "key:key#0 member:string"),
    d("zmscore", "key:key#0 *member:string"),
    d("zrank", "key:key#0 member:string"),
    d("zrevrank", "key:key#0 member:string"),
    d(
        "zrange",
        "key:key#0 start:string stop:string ?sortby:oneof@6.2.0(BYSCORE BYLEX) ?REV@6.2.0 \
        ?offset_count:block=LIMIT@6.2.0(offset:integer count:integer) ?WITHSCORES",
    )
    .history(&[("6.2.0", "REV, BYSCORE, BYLEX and LIMIT.")]),
    d(
        "zrangestore",
        "dst:key#0 src:key#1 min:string max:string ?sortby:oneof(BYSCORE BYLEX) ?REV \
        ?offset_count:block=LIMIT(offset:integer count:integer)",
    ),
    d(
        "zrangebyscore",
        "key:key#0 min:double max:double ?WITHSCORES@2.0.0 \
        ?offset_count:block=LIMIT(offset:integer count:integer)",
    )
    .history(&[("2.0.0", "WITHSCORES.")]),
    d(
        "zrevrangebyscore",
        "key:key#0 max:double min:double ?WITHSCORES ?offset_count:block=LIMIT(offset:integer \
        count:integer)",
    )
    .history(&[("2.1.6", "Exclusive bounds for min and max.")]),
    d(
        "zrangebylex",
        "key:key#0 min:string max:string ?offset_count:block=LIMIT(offset:integer count:integer)",
    ),
    d(
        "zrevrangebylex",
        "key:key#0 max:string min:string ?offset_count:block=LIMIT(offset:integer count:integer)",
    ),
    d(
        "zrevrange",
        "key:key#0 start:integer stop:integer ?WITHSCORES",
    ),
    d("zremrangebyrank", "key:key#0 start:integer stop:integer"),
    d("zremrangebyscore", "key:key#0 min:double max:double"),
    d("zremrangebylex", "key:key#0 min:string max:string"),
    d("zpopmin", "key:key#0 ?count:integer"),
    d("zpopmax", "key:key#0 ?count:integer"),
    d(
        "zmpop",
        "numkeys:integer *key:key#0 where:oneof(MIN MAX) ?count:integer=COUNT",
    ),
    d(
        "zrandmember",
        "key:key#0 ?options:block(count:integer ?WITHSCORES)",
    ),
    d(
        "zunion",
        "numkeys:integer *key:key#0 ?*weight:integer=WEIGHTS ?aggregate:oneof=AGGREGATE(SUM MIN \
        MAX) ?WITHSCORES",
    ),
    d(
        "zinter",
        "numkeys:integer *key:key#0 ?*weight:integer=WEIGHTS ?aggregate:oneof=AGGREGATE(SUM MIN \
        MAX) ?WITHSCORES",
    ),
    d("zdiff", "numkeys:integer *key:key#0 ?WITHSCORES"),
    d(
        "zunionstore",
        "destination:key#0 numkeys:integer *key:key#1 ?*weight:integer=WEIGHTS \
        ?aggregate:oneof=AGGREGATE(SUM MIN MAX)",
    ),
    d(
        "zinterstore",
        "destination:key#0 numkeys:integer *key:key#1 ?*weight:integer=WEIGHTS \
        ?aggregate:oneof=AGGREGATE(SUM MIN MAX)",
    ),
    d("zdiffstore", "destination:key#0 numkeys:integer *key:key#1"),
    d(
        "zintercard",
        "numkeys:integer *key:key#0 ?limit:integer=LIMIT",
    ),
    d(
        "zscan",
        "key:key#0 cursor:integer ?pattern:pattern=MATCH ?count:integer=COUNT",
    ),
    // geo
    d(
        "geoadd",
        "key:key#0 ?condition:oneof@6.2.0(NX XX) ?change=CH@6.2.0 \
        *longitude_latitude_member:block(longitude:double latitude:double member:string)",
    )
    .history(&[("6.2.0", "CH, NX and XX.")]),
    d(
        "geodist",
        "key:key#0 member1:string member2:string ?unit:oneof(M KM FT MI)",
    ),
    d("geohash", "key:key#0 *member:string"),
    d("geopos", "key:key#0 *member:string"),
    d(
        "georadius",
        "key:key#0 longitude:double latitude:double radius:double unit:oneof(M KM FT MI) \
        ?WITHCOORD ?WITHDIST ?WITHHASH ?count:block(count:integer=COUNT ?ANY@6.2.0) \
        ?order:oneof(ASC DESC) ?key:key=STORE#1 ?key:key=STOREDIST#2",
    )
    .history(&[
        ("6.2.0", "ANY, with COUNT."),
        ("7.0.0", "Unit names in any case."),
    ]),
    d(
        "georadiusbymember",
        "key:key#0 member:string radius:double unit:oneof(M KM FT MI) ?WITHCOORD ?WITHDIST \
        ?WITHHASH ?count:block(count:integer=COUNT ?ANY) ?order:oneof(ASC DESC) ?key:key=STORE#1 \
        ?key:key=STOREDIST#2",
    )
    .history(&[("7.0.0", "Unit names in any case.")]),
    d(
        "georadius_ro",
        "key:key#0 longitude:double latitude:double radius:double unit:oneof(M KM FT MI) \
        ?WITHCOORD ?WITHDIST ?WITHHASH ?count:block(count:integer=COUNT ?ANY@6.2.0) \
        ?order:oneof(ASC DESC)",
    )
    .history(&[("6.2.0", "ANY, with COUNT.")]),
    d(
        "georadiusbymember_ro",
        "key:key#0 member:string radius:double unit:oneof(M KM FT MI) ?WITHCOORD ?WITHDIST \
        ?WITHHASH ?count:block(count:integer=COUNT ?ANY) ?order:oneof(ASC DESC)",
    ),
    d(
        "geosearch",
        "key:key#0 from:oneof(member:string=FROMMEMBER \
        longitude_latitude:block=FROMLONLAT(longitude:double latitude:double)) \
        by:oneof(circle:block(radius:double=BYRADIUS unit:oneof(M KM FT MI)) \
        box:block(width:double=BYBOX height:double unit:oneof(M KM FT MI))) ?order:oneof(ASC \
        DESC) ?count:block(count:integer=COUNT ?ANY) ?WITHCOORD ?WITHDIST ?WITHHASH",
    )
    .history(&[("7.0.0", "Unit names in any case.")]),
    d(
        "geosearchstore",
        "destination:key#0 source:key#1 from:oneof(member:string=FROMMEMBER \
        longitude_latitude:block=FROMLONLAT(longitude:double latitude:double)) \
        by:oneof(circle:block(radius:double=BYRADIUS unit:oneof(M KM FT MI)) \
        box:block(width:double=BYBOX height:double unit:oneof(M KM FT MI))) ?order:oneof(ASC \
        DESC) ?count:block(count:integer=COUNT ?ANY) ?STOREDIST",
    )
    .history(&[("7.0.0", "Unit names in any case.")]),
    // hyperloglog
    d("pfadd", "key:key#0 ?*element:string"),
    d("pfcount", "*key:key#0"),
    d("pfmerge", "destkey:key#0 *sourcekey:key#1"),
    d("pfdebug", "subcommand:string key:key#0"),
    d("pfselftest", ""),
    // stream
    d(
        "xadd",
        "key:key#0 ?NOMKSTREAM@6.2.0 ?trim:block(strategy:oneof(MAXLEN MINID@6.2.0) \
        ?operator:oneof(equal== approximately=~) threshold:string ?count:integer=LIMIT@6.2.0) \
        id_or_auto:oneof(auto_id=* id:string) *field_value:block(field:string value:string)",
    )
    .history(&[
        ("6.2.0", "NOMKSTREAM, MINID strategy and LIMIT."),
        ("7.0.0", "IDs of the form `<ms>-*`."),
    ]),
    d(
        "xrange",
        "key:key#0 start:string end:string ?count:integer=COUNT",
    )
    .history(&[("6.2.0", "Exclusive range ends, written with `(`.")]),
    d(
        "xrevrange",
        "key:key#0 end:string start:string ?count:integer=COUNT",
    )
    .history(&[("6.2.0", "Exclusive range ends, written with `(`.")]),
    d("xlen", "key:key#0"),
    d("xdel", "key:key#0 *id:string"),
    d(
        "xtrim",
        "key:key#0 trim:block(strategy:oneof(MAXLEN MINID@6.2.0) ?operator:oneof(equal== \
        approximately=~) threshold:string ?count:integer=LIMIT@6.2.0)",
    )
    .history(&[("6.2.0", "MINID strategy and LIMIT.")]),
    d(
        "xsetid",
        "key:key#0 last-id:string ?entries_added:integer=ENTRIESADDED@7.0.0 \
        ?max_deleted_entry_id:string=MAXDELETEDID@7.0.0",
    )
    .history(&[("7.0.0", "ENTRIESADDED and MAXDELETEDID.")]),
    d(
        "xread",
        "?count:integer=COUNT ?milliseconds:integer=BLOCK streams:block=STREAMS(*key:key#0 \
        *id:string)",
    ),
    d("xinfo", ""),
    d("xinfo|consumers", "key:key#0 groupname:string"),
    d("xinfo|groups", "key:key#0").history(&[("7.0.0", "Each group's entries read and lag.")]),
    d("xinfo|help", ""),
    d(
        "xinfo|stream",
        "key:key#0 ?full:block=FULL(?count:integer=COUNT)",
    )
    .history(&[
        ("6.0.0", "FULL form."),
        (
            "7.0.0",
            "Added and deleted counts, the first ID, and each group's reads and lag.",
        ),
    ]),
    d("xgroup", ""),
    d(
        "xgroup|create",
        "key:key#0 groupname:string id:oneof(id:string new_id=$) ?MKSTREAM \
        ?entries_read:integer=ENTRIESREAD",
    )
    .history(&[("7.0.0", "ENTRIESREAD.")]),
    d(
        "xgroup|createconsumer",
        "key:key#0 groupname:string consumername:string",
    ),
    d(
        "xgroup|delconsumer",
        "key:key#0 groupname:string consumername:string",
    ),
    d("xgroup|destroy", "key:key#0 groupname:string"),
    d("xgroup|help", ""),
    d(
        "xgroup|setid",
        "key:key#0 groupname:string id:oneof(id:string new_id=$) \
        ?entries_read:integer=ENTRIESREAD",
    )
    .history(&[("7.0.0", "Optional ENTRIESREAD.")]),
    d(
        "xreadgroup",
        "group_consumer:block=GROUP(group:string consumer:string) ?count:integer=COUNT \
        ?milliseconds:integer=BLOCK ?NOACK streams:block=STREAMS(*key:key#0 *id:string)",
    ),
    d("xack", "key:key#0 group:string *id:string"),
    d(
        "xpending",
        "key:key#0 group:string ?filters:block(?min-idle-time:integer=IDLE@6.2.0 start:string \
        end:string count:integer ?consumer:string)",
    )
    .history(&[("6.2.0", "IDLE filter and exclusive ranges.")]),
    d(
        "xclaim",
        "key:key#0 group:string consumer:string min-idle-time:string *id:string ?ms:integer=IDLE \
        ?unix-time-milliseconds:unix-time=TIME ?count:integer=RETRYCOUNT ?FORCE ?JUSTID \
        ?id:string=LASTID",
    ),
    d(
        "xautoclaim",
        "key:key#0 group:string consumer:string min-idle-time:string start:string \
        ?count:integer=COUNT ?JUSTID",
    )
    .history(&[(
        "7.0.0",
        "A third reply element: the deleted IDs dropped from the PEL.",
    )]),
    // scripting
    d(
        "eval",
        "script:string numkeys:integer ?*key:key#0 ?*arg:string",
    ),
    d(
        "evalsha",
        "sha1:string numkeys:integer ?*key:key#0 ?*arg:string",
    ),
    d(
        "eval_ro",
        "script:string numkeys:integer ?*key:key#0 ?*arg:string",
    ),
    d(
        "evalsha_ro",
        "sha1:string numkeys:integer ?*key:key#0 ?*arg:string",
    ),
    d(
        "fcall",
        "function:string numkeys:integer ?*key:key#0 ?*arg:string",
    ),
    d(
        "fcall_ro",
        "function:string numkeys:integer ?*key:key#0 ?*arg:string",
    ),
    d("script", ""),
    d("script|help", ""),
    d("script|flush", "?async:oneof@6.2.0(ASYNC SYNC)")
        .history(&[("6.2.0", "ASYNC and SYNC modes.")]),
    d("script|exists", "*sha1:string"),
    d("script|load", "script:string"),
    d("script|debug", "mode:oneof(YES SYNC NO)"),
    d("script|kill", ""),
    d("function", ""),
    d("function|load", "?REPLACE function-code:string"),
    d("function|delete", "library-name:string"),
    d("function|help", ""),
    d(
        "function|list",
        "?library-name-pattern:string=LIBRARYNAME ?WITHCODE",
    ),
    d("function|kill", ""),
    d(
        "function|restore",
        "serialized-value:string ?policy:oneof(FLUSH APPEND REPLACE)",
    ),
    d("function|dump", ""),
    d("function|flush", "?async:oneof(ASYNC SYNC)"),
    d("function|stats", ""),
    // generic
    d(
        "sort",
        "key:key#0 ?pattern:pattern=BY#1 ?offset_count:block=LIMIT(offset:integer count:integer) \
        ?*+pattern:pattern=GET#1 ?order:oneof(ASC DESC) ?sorting=ALPHA ?destination:key=STORE#2",
    ),
    d(
        "sort_ro",
        "key:key#0 ?pattern:pattern=BY#1 ?offset_count:block=LIMIT(offset:integer count:integer) \
        ?*+pattern:pattern=GET#1 ?order:oneof(ASC DESC) ?sorting=ALPHA",
    ),
    // server
    d("memory", ""),
    d("memory|doctor", ""),
    d("memory|purge", ""),
    d("memory|help", ""),
    d("memory|usage", "key:key#0 ?count:integer=SAMPLES"),
    d("memory|malloc-stats", ""),
    d("memory|stats", ""),
    d("latency", ""),
    d("latency|help", ""),
    d("latency|latest", ""),
    d("latency|doctor", ""),
    d("latency|histogram", "?*command:string"),
    d("latency|reset", "?*event:string"),
    d("latency|graph", "event:string"),
    d("latency|history", "event:string"),
    d("module", ""),
    d("module|unload", "name:string"),
    d("module|help", ""),
    d(
        "module|loadex",
        "path:string ?*+configs:block=CONFIG(name:string value:string) \
        ?*args:block=ARGS(arg:string)",
    ),
    d("module|load", "path:string ?*arg:string"),
    d("module|list", ""),
    d("lolwut", "?version:integer=VERSION"),
    // cluster
    d("cluster", ""),
    d("cluster|countkeysinslot", "slot:integer"),
    d("cluster|forget", "node-id:string"),
    d(
        "cluster|addslotsrange",
        "*start-slot_end-slot:block(start-slot:integer end-slot:integer)",
    ),
    d("cluster|set-config-epoch", "config-epoch:integer"),
    d(
        "cluster|setslot",
        "slot:integer subcommand:oneof(node-id:string=IMPORTING node-id:string=MIGRATING \
        node-id:string=NODE STABLE)",
    ),
    d("cluster|addslots", "*slot:integer"),
    d("cluster|count-failure-reports", "node-id:string"),
    d("cluster|failover", "?options:oneof(FORCE TAKEOVER)"),
    d("cluster|bumpepoch", ""),
    d("cluster|delslots", "*slot:integer"),
    d("cluster|info", ""),
    d("cluster|keyslot", "key:string"),
    d("cluster|links", ""),
    d("cluster|slots", "").history(&[
        ("4.0.0", "Node IDs."),
        ("7.0.0", "Networking metadata for each node."),
    ]),
    d("cluster|replicate", "node-id:string"),
    d("cluster|help", ""),
    d("cluster|nodes", ""),
    d(
        "cluster|meet",
        "ip:string port:integer ?cluster_bus_port:integer@4.0.0",
    )
    .history(&[("4.0.0", "Optional cluster bus port.")]),
    d("cluster|getkeysinslot", "slot:integer count:integer"),
    d("cluster|slaves", "node-id:string"),
    d("cluster|reset", "?hard_soft:oneof(HARD SOFT)"),
    d(
        "cluster|delslotsrange",
        "*start-slot_end-slot:block(start-slot:integer end-slot:integer)",
    ),
    d("cluster|flushslots", ""),
    d("cluster|shards", ""),
    d("cluster|saveconfig", ""),
    d("cluster|replicas", "node-id:string"),
    d("cluster|myid", ""),
    d("readonly", ""),
    d("readwrite", ""),
    d("asking", ""),
    // server
    d("acl", ""),
    d("acl|load", ""),
    d("acl|deluser", "*username:string"),
    d("acl|whoami", ""),
    d("acl|help", ""),
    d("acl|users", ""),
    d("acl|setuser", "username:string ?*rule:string").history(&[
        ("6.2.0", "Channel patterns."),
        ("7.0.0", "Selectors and read or write key permissions."),
    ]),
    d("acl|cat", "?categoryname:string"),
    d("acl|save", ""),
    d("acl|getuser", "username:string").history(&[
        ("6.2.0", "Channel patterns."),
        (
            "7.0.0",
            "Selectors; key and channel patterns shown as rules.",
        ),
    ]),
    d("acl|log", "?operation:oneof(count:integer RESET)"),
    d("acl|list", ""),
    d("acl|genpass", "?bits:integer"),
    d("acl|dryrun", "username:string command:string ?*arg:string"),
];
