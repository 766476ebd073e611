//! A data dir's files, to show a refused start changed nothing (storage-fault tests of
//! tern-core and tern-harness; the harness includes this file by `#[path]`).

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
