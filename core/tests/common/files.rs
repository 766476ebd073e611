//! A data dir's files and its database's rows, to show a refused start or a failed sync
//! changed nothing (storage- and chain-fault tests of tern-core and tern-harness; the harness
//! includes this file by `#[path]`).
#![allow(dead_code)]

/// Every file in `dir` with its bytes; not SQLite's `-shm` index (rebuilt from the WAL at each
/// open, no data), an empty `-wal`, or the lock file (empty, a lock only).
pub fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read"))
        })
        .filter(|(name, bytes)| {
            let empty_companion =
                bytes.is_empty() && (name.ends_with("-wal") || name.ends_with(".lock"));
            !(name.ends_with("-shm") || empty_companion)
        })
        .collect();
    files.sort();
    files
}

/// Every row of every table of the node's database in `data`, in order: what "no stored
/// state changed" compares.
pub fn rows(data: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        data.join("tern.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    let mut rows = Vec::new();
    for t in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .expect("select");
        let n = stmt.column_count();
        let mut q = stmt.query([]).expect("rows");
        while let Some(row) = q.next().expect("row") {
            let cols: Vec<String> = (0..n)
                .map(|i| format!("{:?}", row.get_ref(i).expect("col")))
                .collect();
            rows.push(format!("{t}: {}", cols.join("|")));
        }
    }
    rows
}
