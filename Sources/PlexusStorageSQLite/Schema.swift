import Foundation
import GRDB
import PlexusChunks
import PlexusStorage

/// The SQLite schema (docs/storage.md explains it). Evolves only through migrations.
enum Schema {
    static func migrator() -> DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1_initial") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
                    CREATE TABLE orgs (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        created_at INTEGER NOT NULL);
                    CREATE TABLE api_keys (
                        id TEXT PRIMARY KEY,
                        org_id INTEGER NOT NULL REFERENCES orgs(id),
                        name TEXT NOT NULL,
                        hash BLOB NOT NULL UNIQUE,
                        prefix TEXT NOT NULL,
                        scopes TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER,
                        revoked_at INTEGER);
                    CREATE TABLE sources (
                        org_id INTEGER NOT NULL,
                        source_id TEXT NOT NULL,
                        first_seen INTEGER NOT NULL,
                        last_seen INTEGER NOT NULL,
                        PRIMARY KEY (org_id, source_id)) WITHOUT ROWID;
                    CREATE TABLE series (
                        id INTEGER PRIMARY KEY,
                        org_id INTEGER NOT NULL,
                        source_id TEXT NOT NULL,
                        metric TEXT NOT NULL,
                        numeric INTEGER NOT NULL,
                        tags TEXT NOT NULL,
                        session_id TEXT NOT NULL,
                        derived INTEGER NOT NULL,
                        last_ts INTEGER,
                        last_value TEXT,
                        UNIQUE (org_id, source_id, metric, numeric, tags, session_id, derived));
                    CREATE INDEX series_session ON series (org_id, session_id) WHERE session_id <> '';
                    CREATE TABLE chunks (
                        id INTEGER PRIMARY KEY,
                        series_id INTEGER NOT NULL,
                        min_ts INTEGER NOT NULL,
                        max_ts INTEGER NOT NULL,
                        count INTEGER NOT NULL,
                        data BLOB NOT NULL);
                    CREATE INDEX chunks_series_time ON chunks (series_id, max_ts);
                    CREATE TABLE rollup_1m (
                        series_id INTEGER NOT NULL,
                        bucket INTEGER NOT NULL,
                        min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL,
                        PRIMARY KEY (series_id, bucket)) WITHOUT ROWID;
                    CREATE TABLE rollup_1h (
                        series_id INTEGER NOT NULL,
                        bucket INTEGER NOT NULL,
                        min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL,
                        PRIMARY KEY (series_id, bucket)) WITHOUT ROWID;
                    CREATE TABLE sessions (
                        org_id INTEGER NOT NULL,
                        session_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        source_id TEXT NOT NULL,
                        status TEXT NOT NULL,
                        tags TEXT NOT NULL,
                        metadata TEXT NOT NULL,
                        started_at INTEGER NOT NULL,
                        started_explicit INTEGER NOT NULL,
                        ended_at INTEGER,
                        created_at INTEGER NOT NULL,
                        created_by_data INTEGER NOT NULL,
                        PRIMARY KEY (org_id, session_id)) WITHOUT ROWID;
                    CREATE INDEX sessions_source ON sessions (org_id, source_id);
                    """)
            let now = SQLiteStore.nowMicros()
            try db.execute(sql: "INSERT INTO orgs (id, name, created_at) VALUES (1, 'default', ?)", arguments: [now])
        }
        m.registerMigration("v2_device_claims") { db in
            try db.execute(
                sql: """
                    CREATE TABLE device_claims (
                        org_id INTEGER NOT NULL,
                        source_id TEXT NOT NULL,
                        install_id TEXT NOT NULL,
                        requested TEXT NOT NULL,
                        claimed_at INTEGER NOT NULL,
                        PRIMARY KEY (org_id, source_id)) WITHOUT ROWID;
                    CREATE INDEX device_claims_install ON device_claims (org_id, install_id, requested);
                    """)
        }
        m.registerMigration("v3_recordings") { db in
            try db.execute(
                sql: """
                    CREATE TABLE recordings (
                        org_id INTEGER NOT NULL,
                        source_id TEXT NOT NULL,
                        session_id TEXT NOT NULL,
                        PRIMARY KEY (org_id, source_id)) WITHOUT ROWID;
                    """)
        }
        m.registerMigration("v4_accounts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        id INTEGER PRIMARY KEY,
                        org_id INTEGER NOT NULL REFERENCES orgs(id),
                        email TEXT NOT NULL UNIQUE,
                        name TEXT NOT NULL,
                        password_hash TEXT NOT NULL,
                        role TEXT NOT NULL,
                        created_at INTEGER NOT NULL);
                    CREATE INDEX users_org ON users (org_id);
                    CREATE TABLE login_sessions (
                        token_hash BLOB PRIMARY KEY,
                        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        csrf_token TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE INDEX login_sessions_user ON login_sessions (user_id);
                    CREATE TABLE invites (
                        token_hash BLOB PRIMARY KEY,
                        org_id INTEGER NOT NULL REFERENCES orgs(id),
                        role TEXT NOT NULL,
                        created_by INTEGER NOT NULL,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL,
                        used_at INTEGER) WITHOUT ROWID;
                    """)
        }
        // Each rollup row also aggregates apart its points exactly at the bucket's start,
        // so a closed range whose ends are bucket starts is answered from rollups exactly
        // (PromQL's ranges). Rows written before this have a NULL edge_count: unknown.
        m.registerMigration("v5_rollup_edges") { db in
            for table in ["rollup_1m", "rollup_1h"] {
                try db.execute(
                    sql: """
                        ALTER TABLE \(table) ADD COLUMN edge_count INTEGER;
                        ALTER TABLE \(table) ADD COLUMN edge_min REAL;
                        ALTER TABLE \(table) ADD COLUMN edge_max REAL;
                        ALTER TABLE \(table) ADD COLUMN edge_sum REAL;
                        """)
            }
        }
        // Retention: an organisation's own periods (NULL: the server's default; 0: forever;
        // else microseconds) and sessions pinned against it.
        m.registerMigration("v6_retention") { db in
            try db.execute(
                sql: """
                    ALTER TABLE orgs ADD COLUMN raw_retention_us INTEGER;
                    ALTER TABLE orgs ADD COLUMN rollup_retention_us INTEGER;
                    ALTER TABLE sessions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        // Rollups as blocks: one row per series and hour of minute buckets (day of hour
        // buckets), a RollupBlock, in place of a row per bucket (56 bytes and more each,
        // most of the file). Every row is carried over, edges not known staying so.
        m.registerMigration("v7_rollup_blocks") { db in
            for (old, width) in [("rollup_1m", RollupWidth.minute), ("rollup_1h", .hour)] {
                try db.execute(
                    sql: """
                        CREATE TABLE \(width.table) (
                            series_id INTEGER NOT NULL,
                            block INTEGER NOT NULL,
                            data BLOB NOT NULL,
                            PRIMARY KEY (series_id, block)) WITHOUT ROWID;
                        """)
                let save = try db.makeStatement(sql: "INSERT INTO \(width.table) (series_id, block, data) VALUES (?, ?, ?)")
                let rows = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT series_id, bucket, min, max, sum, count, edge_count, edge_min, edge_max, edge_sum
                        FROM \(old) ORDER BY series_id, bucket
                        """)
                var current: (series: Int64, block: Int64)? = nil
                var rollups = RollupBlock()
                func flush() throws {
                    if let current, !rollups.isEmpty {
                        try save.execute(arguments: [current.series, current.block, Data(rollups.encoded())])
                    }
                    rollups = RollupBlock()
                }
                while let r = try rows.next() {
                    let (series, bucket): (Int64, Int64) = (r[0], r[1])
                    let block = width.blockStart(of: bucket)
                    if current.map({ $0 != (series, block) }) ?? true {
                        try flush()
                        current = (series, block)
                    }
                    let all = RollupBlock.Aggregate(count: r[5], min: r[2], max: r[3], sum: r[4])
                    let edge: RollupBlock.Aggregate? = (r[6] as Int64?).map { n in
                        n > 0 ? RollupBlock.Aggregate(count: n, min: r[7], max: r[8], sum: r[9]) : .init(count: 0, min: 0, max: 0, sum: 0)
                    }
                    rollups.add(index: Int((bucket - block) / width.micros), all: all, edge: edge)
                }
                try flush()
                try db.execute(sql: "DROP TABLE \(old)")
            }
        }
        return m
    }
}
