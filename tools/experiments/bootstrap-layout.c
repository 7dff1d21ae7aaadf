/*
 * How fast can SQLite alone store a bootstrap of 100,000 customers x (1 field write + 10 tag adds)?
 * An experiment behind docs/BENCHMARKS.md, not part of Siyu: plain C on the system SQLite, the same
 * PRAGMAs as a store replica (WAL, synchronous NORMAL, 16 MiB cache), one transaction, no Swift.
 *
 *   cc -O2 tools/experiments/bootstrap-layout.c -lsqlite3 -o /tmp/bootstrap-layout
 *   /tmp/bootstrap-layout SORTED SLIM DEFER RANDSEQ      (each 0 or 1)
 *
 * SORTED   customers arrive in id order (a snapshot in instance order) instead of at random
 * SLIM     op log keyed by instance (inst_kind, inst_id, origin, seq) with only the indexed columns
 *          and the body, plus a unique (origin, seq) index — instead of schema 2's 13-column op
 *          log keyed by (origin, seq) with an ops_by_instance index
 * DEFER    secondary indexes of the op log are built after the load (only with SLIM)
 * RANDSEQ  sequence numbers are a random permutation (ops of many origins and times, as a hub's
 *          snapshot in instance order would carry) instead of rising with the customers
 *
 * With PER_INSTANCE=1 in the environment, SLIM is replaced by an op log of one row per instance
 * (inst_kind, inst_id, ops BLOB holding all its ops) and a tag index of one row per (tag,
 * customer) — no per-op row at all; the plain tables are written as before.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void run(sqlite3 *db, const char *sql) {
    char *err = 0;
    if (sqlite3_exec(db, sql, 0, 0, &err) != SQLITE_OK) { fprintf(stderr, "%s: %s\n", sql, err); exit(1); }
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s SORTED SLIM DEFER RANDSEQ\n", argv[0]); return 2; }
    int sorted = atoi(argv[1]), slim = atoi(argv[2]), defer = atoi(argv[3]) && slim, randseq = atoi(argv[4]);
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    enum { N = 100000, OPS = 11 };
    static char ids[N][33];
    static char *order[N];
    srand(5);
    for (int i = 0; i < N; i++) {   /* WeCom-like: corp prefix, 21 random characters, "A" */
        memcpy(ids[i], "wmQm7wCAAA", 10);
        for (int j = 10; j < 31; j++) ids[i][j] = alphabet[rand() % 64];
        ids[i][31] = 'A'; ids[i][32] = 0;
        order[i] = ids[i];
    }
    if (sorted) qsort(order, N, sizeof(char *), cmp);
    static long seqs[(long)N * OPS];
    for (long q = 0; q < (long)N * OPS; q++) seqs[q] = q + 1;
    if (randseq) for (long q = (long)N * OPS - 1; q > 0; q--) { long r = rand() % (q + 1), t = seqs[q]; seqs[q] = seqs[r]; seqs[r] = t; }

    const char *path = "/tmp/bootstrap-layout.db";
    remove(path); remove("/tmp/bootstrap-layout.db-wal"); remove("/tmp/bootstrap-layout.db-shm");
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) return 1;
    run(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384;");
    const char *indexes;
    int perInstance = getenv("PER_INSTANCE") != NULL;
    if (perInstance) {
        run(db, "CREATE TABLE instance_ops(inst_kind INTEGER NOT NULL, inst_id TEXT NOT NULL, ops BLOB NOT NULL,"
                " PRIMARY KEY(inst_kind, inst_id)) WITHOUT ROWID;"
                "CREATE TABLE tag_holders(tag_id TEXT NOT NULL, customer_id TEXT NOT NULL, PRIMARY KEY(tag_id, customer_id)) WITHOUT ROWID;");
        indexes = "";
        defer = 0;
    } else if (!slim) {
        run(db, "CREATE TABLE ops(origin TEXT NOT NULL, seq INTEGER NOT NULL, hlc INTEGER NOT NULL, inst_kind TEXT NOT NULL,"
                " inst_id TEXT NOT NULL, entity TEXT NOT NULL, target_id TEXT NOT NULL, sub TEXT NOT NULL, field TEXT NOT NULL,"
                " kind TEXT NOT NULL, value, author TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY(origin, seq)) WITHOUT ROWID;");
        indexes = "CREATE INDEX ops_by_instance ON ops(inst_kind, inst_id);"
                  "CREATE INDEX ops_by_tag ON ops(sub, target_id) WHERE entity = 'customer_tag';";
    } else {
        run(db, "CREATE TABLE ops(inst_kind INTEGER NOT NULL, inst_id TEXT NOT NULL, origin TEXT NOT NULL, seq INTEGER NOT NULL,"
                " hlc INTEGER NOT NULL, entity INTEGER NOT NULL, sub TEXT NOT NULL, body BLOB NOT NULL,"
                " PRIMARY KEY(inst_kind, inst_id, origin, seq)) WITHOUT ROWID;");
        indexes = "CREATE UNIQUE INDEX ops_by_origin ON ops(origin, seq);"
                  "CREATE INDEX ops_by_tag ON ops(sub, inst_id) WHERE entity = 7;";
    }
    if (!defer) run(db, indexes);
    run(db, "CREATE TABLE customers(customer_id TEXT PRIMARY KEY, name TEXT, deleted INTEGER) WITHOUT ROWID;"
            "CREATE TABLE customer_tags(customer_id TEXT, tag_id TEXT, added_by TEXT, added_node TEXT, added_at INTEGER,"
            " PRIMARY KEY(customer_id, tag_id)) WITHOUT ROWID;");
    sqlite3_stmt *ins, *tag, *cus, *holder = 0;
    if (perInstance) {
        sqlite3_prepare_v2(db, "INSERT INTO tag_holders VALUES(?,?)", -1, &holder, 0);
    }
    sqlite3_prepare_v2(db, perInstance ? "INSERT INTO instance_ops VALUES(?,?,?)" : slim ? "INSERT OR IGNORE INTO ops VALUES(?,?,?,?,?,?,?,?)"
                                : "INSERT OR IGNORE INTO ops VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &ins, 0);
    sqlite3_prepare_v2(db, "INSERT INTO customer_tags VALUES(?,?,?,?,?)", -1, &tag, 0);
    sqlite3_prepare_v2(db, "INSERT INTO customers VALUES(?,?,0)", -1, &cus, 0);
    unsigned char body[40];
    memset(body, 7, sizeof body);

    double start = now(), built = 0;
    run(db, "BEGIN");
    long n = 0;
    for (int i = 0; i < N && perInstance; i++) {   /* one op-log row per customer, then its rows */
        const char *id = order[i];
        unsigned char blob[OPS * sizeof body];
        for (int k = 0; k < OPS; k++) memcpy(blob + k * sizeof body, body, sizeof body);
        sqlite3_bind_int(ins, 1, 5); sqlite3_bind_text(ins, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 3, blob, sizeof blob, SQLITE_STATIC);
        sqlite3_step(ins); sqlite3_reset(ins);
        sqlite3_bind_text(cus, 1, id, -1, SQLITE_STATIC); sqlite3_bind_text(cus, 2, id, -1, SQLITE_STATIC);
        sqlite3_step(cus); sqlite3_reset(cus);
        for (int k = 1; k < OPS; k++) {
            long seq = seqs[n++];
            char sub[8];
            snprintf(sub, sizeof sub, "t%d", k - 1);
            sqlite3_bind_text(tag, 1, id, -1, SQLITE_STATIC); sqlite3_bind_text(tag, 2, sub, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(tag, 3, "zhaolei", -1, SQLITE_STATIC); sqlite3_bind_text(tag, 4, "hq", -1, SQLITE_STATIC);
            sqlite3_bind_int64(tag, 5, seq); sqlite3_step(tag); sqlite3_reset(tag);
            sqlite3_bind_text(holder, 1, sub, -1, SQLITE_TRANSIENT); sqlite3_bind_text(holder, 2, id, -1, SQLITE_STATIC);
            sqlite3_step(holder); sqlite3_reset(holder);
        }
    }
    for (int i = 0; i < N && !perInstance; i++) {
        const char *id = order[i];
        for (int k = 0; k < OPS; k++) {
            long seq = seqs[n++];
            char sub[8];
            snprintf(sub, sizeof sub, k ? "t%d" : "", k - 1);
            if (!slim) {
                sqlite3_bind_text(ins, 1, "hq", -1, SQLITE_STATIC); sqlite3_bind_int64(ins, 2, seq); sqlite3_bind_int64(ins, 3, seq * 7);
                sqlite3_bind_text(ins, 4, "customer", -1, SQLITE_STATIC); sqlite3_bind_text(ins, 5, id, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 6, k ? "customer_tag" : "customer", -1, SQLITE_STATIC); sqlite3_bind_text(ins, 7, id, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 8, sub, -1, SQLITE_TRANSIENT); sqlite3_bind_text(ins, 9, k ? "" : "name", -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 10, k ? "add" : "write", -1, SQLITE_STATIC); sqlite3_bind_null(ins, 11);
                sqlite3_bind_text(ins, 12, "zhaolei", -1, SQLITE_STATIC); sqlite3_bind_blob(ins, 13, body, sizeof body, SQLITE_STATIC);
            } else {
                sqlite3_bind_int(ins, 1, 5); sqlite3_bind_text(ins, 2, id, -1, SQLITE_STATIC); sqlite3_bind_text(ins, 3, "hq", -1, SQLITE_STATIC);
                sqlite3_bind_int64(ins, 4, seq); sqlite3_bind_int64(ins, 5, seq * 7); sqlite3_bind_int(ins, 6, k ? 7 : 3);
                sqlite3_bind_text(ins, 7, sub, -1, SQLITE_TRANSIENT); sqlite3_bind_blob(ins, 8, body, sizeof body, SQLITE_STATIC);
            }
            sqlite3_step(ins); sqlite3_reset(ins);
            if (k) {
                sqlite3_bind_text(tag, 1, id, -1, SQLITE_STATIC); sqlite3_bind_text(tag, 2, sub, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(tag, 3, "zhaolei", -1, SQLITE_STATIC); sqlite3_bind_text(tag, 4, "hq", -1, SQLITE_STATIC);
                sqlite3_bind_int64(tag, 5, seq); sqlite3_step(tag); sqlite3_reset(tag);
            } else {
                sqlite3_bind_text(cus, 1, id, -1, SQLITE_STATIC); sqlite3_bind_text(cus, 2, id, -1, SQLITE_STATIC);
                sqlite3_step(cus); sqlite3_reset(cus);
            }
        }
    }
    if (defer && !perInstance) { double t = now(); run(db, indexes); built = now() - t; }
    run(db, "COMMIT");
    printf("sorted=%d slim=%d defer=%d randseq=%d%s: %.2f s (index build %.2f s)\n", sorted, slim, defer, randseq,
           perInstance ? " per-instance" : "", now() - start, built);
    sqlite3_finalize(ins); sqlite3_finalize(tag); sqlite3_finalize(cus);
    if (holder) sqlite3_finalize(holder);
    sqlite3_close(db);
    remove(path); remove("/tmp/bootstrap-layout.db-wal"); remove("/tmp/bootstrap-layout.db-shm");
    return 0;
}
