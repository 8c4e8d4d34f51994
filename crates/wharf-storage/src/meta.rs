//! The metadata database: one SQLite file, `meta.db`, in WAL mode.
//!
//! Schema (version 4; `PRAGMA user_version` holds the applied version, migrations only go forward):
//!
//! ```text
//! +--------------------------------+     +------------------------------+
//! | images                         |     | tags                         |
//! |--------------------------------|     |------------------------------|
//! | id              TEXT PK        |<----| image_id   TEXT FK ON DEL    |
//! |                 (config digest)|  |  |                    CASCADE   |
//! | manifest_digest TEXT           |  |  | reference  TEXT PK           |
//! | config_digest   TEXT           |  |  |   (`busybox:latest`)         |
//! | chain_id        TEXT (top snap)|  |  | created    TEXT              |
//! | size            INTEGER        |  |  +------------------------------+
//! | created         TEXT           |  |
//! +--------------------------------+  |  +------------------------------+
//!                                     |  | repo_digests (v2)            |
//!                                     |  |------------------------------|
//!                                     +--| image_id   TEXT FK ON DEL    |
//!                                        |                    CASCADE   |
//!                                        | reference  TEXT PK           |
//!                                        |   (`busybox@sha256:...`: the |
//!                                        |   manifest or index pulled)  |
//!                                        | created    TEXT              |
//!                                        +------------------------------+
//!
//! +--------------------------------+     +------------------------------+
//! | containers                     |     | snapshots                    |
//! |--------------------------------|     |------------------------------|
//! | id        TEXT PK              |     | key      TEXT PK             |
//! | name      TEXT UNIQUE NOT NULL |     | id       INTEGER UNIQUE      |--> snapshots/<id>/{fs,work}
//! | image_id  TEXT (no FK: policy  |     | parent   TEXT FK -> key  ----+--+ (self; a parent with
//! |           is the engine's)     |     | kind     TEXT active|        |  |  children cannot go)
//! | config    TEXT JSON, fixed     |     |               committed      |<-+
//! | state     TEXT JSON, changes   |     | created  TEXT                |
//! | created   TEXT                 |     +------------------------------+
//! +--------------------------------+
//! ```
//!
//! volumes (v3): name TEXT PK, driver TEXT, labels TEXT JSON, options TEXT JSON, created TEXT.
//!
//! image_parents (v4): image_id TEXT PK FK → images ON DELETE CASCADE, parent TEXT (an image
//! id; no FK: a parent may go while its children stay, as dockerd's metadata allows).
//!
//! Timestamps are RFC 3339 UTC strings. Storage never interprets the container JSON.
//!
//! Durability: `synchronous=FULL`. In WAL mode NORMAL only risks the last few commits on power loss
//! (never corruption), but the daemon tells clients "created" right after a commit and other files
//! (snapshot dirs, blobs) are written first and fsynced, so a DB row that silently vanishes after an
//! acknowledged request would be a lie. Metadata writes are rare (per container/image operation, not
//! per byte), so the extra fsync per commit is cheap.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, Transaction};

use crate::{now_rfc3339, IoContext, Result, StorageError};

/// Forward migrations; index + 1 is the schema version each one produces. Never edit a shipped entry.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE images (
        id              TEXT PRIMARY KEY NOT NULL,
        manifest_digest TEXT NOT NULL,
        config_digest   TEXT NOT NULL,
        chain_id        TEXT NOT NULL,
        size            INTEGER NOT NULL,
        created         TEXT NOT NULL
    );
    CREATE TABLE tags (
        reference TEXT PRIMARY KEY NOT NULL,
        image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        created   TEXT NOT NULL
    );
    CREATE INDEX tags_image_id ON tags(image_id);
    CREATE TABLE containers (
        id       TEXT PRIMARY KEY NOT NULL,
        name     TEXT UNIQUE NOT NULL,
        image_id TEXT NOT NULL,
        config   TEXT NOT NULL,
        state    TEXT NOT NULL,
        created  TEXT NOT NULL
    );
    CREATE INDEX containers_image_id ON containers(image_id);
    CREATE TABLE snapshots (
        key     TEXT PRIMARY KEY NOT NULL,
        id      INTEGER UNIQUE NOT NULL,
        parent  TEXT REFERENCES snapshots(key),
        kind    TEXT NOT NULL CHECK (kind IN ('active', 'committed')),
        created TEXT NOT NULL
    );
    CREATE INDEX snapshots_parent ON snapshots(parent);",
    // v2: what a pull recorded (issue 14), Docker's RepoDigests: `<familiar repo>@<digest>` of
    // the manifest or index the registry served. A name like a tag, kept apart so that a tag
    // never reads as a digest and the reverse.
    "CREATE TABLE repo_digests (
        reference TEXT PRIMARY KEY NOT NULL,
        image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        created   TEXT NOT NULL
    );
    CREATE INDEX repo_digests_image_id ON repo_digests(image_id);",
    // v3: named volumes (issue 15). The row is the commit point of a create and a remove:
    // a `volumes/<name>` directory without a row is a half-made or half-removed volume, and
    // the engine deletes it at start.
    "CREATE TABLE volumes (
        name    TEXT PRIMARY KEY NOT NULL,
        driver  TEXT NOT NULL,
        labels  TEXT NOT NULL,
        options TEXT NOT NULL,
        created TEXT NOT NULL
    );",
    // v4: an image's parent, the image a commit was made from (dockerd's `parent` metadata,
    // inspect's `Parent`). Kept beside `images` so that no other image record changes; goes
    // with the child.
    "CREATE TABLE image_parents (
        image_id TEXT PRIMARY KEY NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        parent   TEXT NOT NULL
    );
    CREATE INDEX image_parents_parent ON image_parents(parent);",
];

/// The version this binary writes; a newer file is refused rather than misread.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The config digest, as in Docker.
    pub id: String,
    pub manifest_digest: String,
    pub config_digest: String,
    /// Chain id of the top layer: the committed snapshot containers are prepared on.
    pub chain_id: String,
    pub size: i64,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image_id: String,
    /// Opaque JSON, fixed at create.
    pub config: String,
    /// Opaque JSON, rewritten as the container changes.
    pub state: String,
    pub created: String,
}

/// A named volume; `labels` and `options` are opaque JSON objects to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub labels: String,
    pub options: String,
    pub created: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    Active,
    Committed,
}

impl SnapshotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::Active => "active",
            SnapshotKind::Committed => "committed",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<Self> {
        match s {
            "active" => Ok(SnapshotKind::Active),
            "committed" => Ok(SnapshotKind::Committed),
            other => Err(rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown snapshot kind {other:?}").into(),
            )),
        }
    }
}

impl std::fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub key: String,
    /// Directory name under `snapshots/`.
    pub id: i64,
    pub parent: Option<String>,
    pub kind: SnapshotKind,
    pub created: String,
}

/// The metadata database. One connection behind a mutex: SQLite serializes writers anyway and our
/// statements are short, so a pool would add nothing but lock contention inside SQLite.
pub struct Db {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

fn constraint(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            Some(f.extended_code)
        }
        _ => None,
    }
}

const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

const IMAGE_COLS: &str = "id, manifest_digest, config_digest, chain_id, size, created";
const CONTAINER_COLS: &str = "id, name, image_id, config, state, created";
const SNAPSHOT_COLS: &str = "key, id, parent, kind, created";

const VOLUME_COLS: &str = "name, driver, labels, options, created";

fn volume_row(r: &Row<'_>) -> rusqlite::Result<VolumeRecord> {
    Ok(VolumeRecord {
        name: r.get(0)?,
        driver: r.get(1)?,
        labels: r.get(2)?,
        options: r.get(3)?,
        created: r.get(4)?,
    })
}

fn image_row(r: &Row<'_>) -> rusqlite::Result<ImageRecord> {
    Ok(ImageRecord {
        id: r.get(0)?,
        manifest_digest: r.get(1)?,
        config_digest: r.get(2)?,
        chain_id: r.get(3)?,
        size: r.get(4)?,
        created: r.get(5)?,
    })
}

fn container_row(r: &Row<'_>) -> rusqlite::Result<ContainerRecord> {
    Ok(ContainerRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        image_id: r.get(2)?,
        config: r.get(3)?,
        state: r.get(4)?,
        created: r.get(5)?,
    })
}

fn snapshot_row(r: &Row<'_>) -> rusqlite::Result<SnapshotRecord> {
    let kind: String = r.get(3)?;
    Ok(SnapshotRecord {
        key: r.get(0)?,
        id: r.get(1)?,
        parent: r.get(2)?,
        kind: SnapshotKind::parse(&kind)?,
        created: r.get(4)?,
    })
}

impl Db {
    /// Opens (creating if needed) the database at `path` and migrates it to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Db> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).ctx("create dir", dir)?;
        }
        Db::init(Connection::open(path)?)
    }

    /// A private in-memory database, for tests of code built on top of storage.
    pub fn open_in_memory() -> Result<Db> {
        Db::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Db> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // journal_mode returns a row, so it cannot go through execute().
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        migrate(&mut conn)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done SQL transaction behind (rusqlite
        // rolls back on drop), so the connection is still usable after poisoning.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version stored in the file.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    // ---- images -------------------------------------------------------------------------------

    /// Inserts or replaces an image record (same id → fields updated, tags kept).
    /// Inserts a volume; `false` when one of that name exists already (it is left as is).
    pub fn insert_volume(&self, v: &VolumeRecord) -> Result<bool> {
        let n = self.lock().execute(
            &format!(
                "INSERT INTO volumes ({VOLUME_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO NOTHING"
            ),
            params![v.name, v.driver, v.labels, v.options, v.created],
        )?;
        Ok(n == 1)
    }

    pub fn get_volume(&self, name: &str) -> Result<Option<VolumeRecord>> {
        Ok(self
            .lock()
            .query_row(
                &format!("SELECT {VOLUME_COLS} FROM volumes WHERE name = ?1"),
                [name],
                volume_row,
            )
            .optional()?)
    }

    pub fn list_volumes(&self) -> Result<Vec<VolumeRecord>> {
        let conn = self.lock();
        let mut st = conn.prepare(&format!("SELECT {VOLUME_COLS} FROM volumes ORDER BY name"))?;
        let rows = st.query_map([], volume_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a volume's row; `false` when there was none.
    pub fn delete_volume(&self, name: &str) -> Result<bool> {
        Ok(self
            .lock()
            .execute("DELETE FROM volumes WHERE name = ?1", [name])?
            == 1)
    }

    pub fn put_image(&self, img: &ImageRecord) -> Result<()> {
        upsert_image(&self.lock(), img)
    }

    pub fn get_image(&self, id: &str) -> Result<Option<ImageRecord>> {
        Ok(self
            .lock()
            .query_row(
                &format!("SELECT {IMAGE_COLS} FROM images WHERE id = ?1"),
                [id],
                image_row,
            )
            .optional()?)
    }

    pub fn list_images(&self) -> Result<Vec<ImageRecord>> {
        let conn = self.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {IMAGE_COLS} FROM images ORDER BY created, id"
        ))?;
        let rows = st.query_map([], image_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes the image and (by cascade) its tags. Missing → [`StorageError::ImageNotFound`].
    pub fn delete_image(&self, id: &str) -> Result<()> {
        let n = self
            .lock()
            .execute("DELETE FROM images WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(StorageError::ImageNotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Images whose id starts with `prefix`; a bare hex prefix is taken to mean `sha256:<prefix>`.
    pub fn find_images_by_prefix(&self, prefix: &str) -> Result<Vec<ImageRecord>> {
        let full = if prefix.contains(':') {
            prefix.to_owned()
        } else {
            format!("sha256:{prefix}")
        };
        let conn = self.lock();
        // substr instead of LIKE so '%' and '_' in user input mean themselves.
        let mut st = conn.prepare(&format!(
            "SELECT {IMAGE_COLS} FROM images WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([full], image_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- tags ---------------------------------------------------------------------------------

    /// Points `reference` at `image_id`, moving it if it pointed elsewhere.
    pub fn set_tag(&self, reference: &str, image_id: &str) -> Result<()> {
        let r = self.lock().execute(
            "INSERT INTO tags (reference, image_id, created) VALUES (?1, ?2, ?3)
             ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id,
               created = excluded.created",
            params![reference, image_id, now_rfc3339()],
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if constraint(&e) == Some(SQLITE_CONSTRAINT_FOREIGNKEY) => {
                Err(StorageError::ImageNotFound(image_id.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Saves an image record and, with `reference`, points that tag at it, in one transaction:
    /// a crash leaves the image with its tag or neither (an import's last step).
    pub fn put_image_tagged(&self, img: &ImageRecord, reference: Option<&str>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        upsert_image(&tx, img)?;
        if let Some(r) = reference {
            point_tag(&tx, r, &img.id)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Saves the images a load made and points its tags, in one transaction: a crash or a
    /// failure leaves every image of the archive with its tags, or none of them. Tags move
    /// from the images they named before, as a load's tags replace existing ones.
    pub fn put_loaded_images(
        &self,
        images: &[ImageRecord],
        tags: &[(String, String)],
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for img in images {
            upsert_image(&tx, img)?;
        }
        for (reference, image_id) in tags {
            match point_tag(&tx, reference, image_id) {
                Ok(()) => {}
                Err(StorageError::Db(e))
                    if constraint(&e) == Some(SQLITE_CONSTRAINT_FOREIGNKEY) =>
                {
                    return Err(StorageError::ImageNotFound(image_id.to_owned()))
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Saves a committed image with its parent and, with `reference`, its tag, in one
    /// transaction: the commit point of `docker commit`.
    pub fn put_child_image(
        &self,
        img: &ImageRecord,
        parent: &str,
        reference: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        upsert_image(&tx, img)?;
        tx.execute(
            "INSERT INTO image_parents (image_id, parent) VALUES (?1, ?2)
             ON CONFLICT(image_id) DO UPDATE SET parent = excluded.parent",
            params![img.id, parent],
        )?;
        if let Some(r) = reference {
            point_tag(&tx, r, &img.id)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The image `image_id` was committed from, if any.
    pub fn parent_of(&self, image_id: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT parent FROM image_parents WHERE image_id = ?1",
                params![image_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The images committed from `image_id`.
    pub fn children_of(&self, image_id: &str) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut st =
            conn.prepare("SELECT image_id FROM image_parents WHERE parent = ?1 ORDER BY image_id")?;
        let rows = st.query_map(params![image_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Removes every tag in `references` in one transaction (an image removal that untags
    /// without deleting must not stop half way); how many existed.
    pub fn remove_tags(&self, references: &[String]) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut n = 0;
        for r in references {
            n += tx.execute("DELETE FROM tags WHERE reference = ?1", [r])?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Removes a tag; false if there was none.
    pub fn remove_tag(&self, reference: &str) -> Result<bool> {
        Ok(self
            .lock()
            .execute("DELETE FROM tags WHERE reference = ?1", [reference])?
            > 0)
    }

    pub fn resolve_tag(&self, reference: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT image_id FROM tags WHERE reference = ?1",
                [reference],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn tags_for(&self, image_id: &str) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut st =
            conn.prepare("SELECT reference FROM tags WHERE image_id = ?1 ORDER BY reference")?;
        let rows = st.query_map([image_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// All `(reference, image_id)` pairs.
    pub fn list_tags(&self) -> Result<Vec<(String, String)>> {
        let conn = self.lock();
        let mut st = conn.prepare("SELECT reference, image_id FROM tags ORDER BY reference")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- repository digests -------------------------------------------------------------------

    /// Saves what a pull made, in one transaction, so a crash leaves all of it or none: the
    /// image record (`save_record`; false when the image was already there and only gains
    /// names), the tag `tag` pointing at it (moved if it pointed elsewhere) and the repository
    /// digest `repo_digest`, moved from another image only with `move_repo_digest` (a pull by
    /// digest; a pull by tag keeps an existing one, as dockerd's reference store does).
    pub fn put_pulled_image(
        &self,
        img: &ImageRecord,
        save_record: bool,
        tag: Option<&str>,
        repo_digest: Option<&str>,
        move_repo_digest: bool,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if save_record {
            upsert_image(&tx, img)?;
        }
        let now = now_rfc3339();
        let named = |sql: &str, reference: &str| -> Result<()> {
            match tx.execute(sql, params![reference, img.id, now]) {
                Ok(_) => Ok(()),
                Err(e) if constraint(&e) == Some(SQLITE_CONSTRAINT_FOREIGNKEY) => {
                    Err(StorageError::ImageNotFound(img.id.clone()))
                }
                Err(e) => Err(e.into()),
            }
        };
        if let Some(t) = tag {
            named(
                "INSERT INTO tags (reference, image_id, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id,
                   created = excluded.created",
                t,
            )?;
        }
        if let Some(d) = repo_digest {
            let sql = if move_repo_digest {
                "INSERT INTO repo_digests (reference, image_id, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id,
                   created = excluded.created"
            } else {
                "INSERT INTO repo_digests (reference, image_id, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(reference) DO NOTHING"
            };
            named(sql, d)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn resolve_repo_digest(&self, reference: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT image_id FROM repo_digests WHERE reference = ?1",
                [reference],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn repo_digests_for(&self, image_id: &str) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut st = conn
            .prepare("SELECT reference FROM repo_digests WHERE image_id = ?1 ORDER BY reference")?;
        let rows = st.query_map([image_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// All `(reference, image_id)` pairs.
    pub fn list_repo_digests(&self) -> Result<Vec<(String, String)>> {
        let conn = self.lock();
        let mut st =
            conn.prepare("SELECT reference, image_id FROM repo_digests ORDER BY reference")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes every name in `references`, tags and repository digests alike, in one
    /// transaction (an untag must not stop half way); how many existed.
    pub fn remove_references(&self, references: &[String]) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut n = 0;
        for r in references {
            n += tx.execute("DELETE FROM tags WHERE reference = ?1", [r])?;
            n += tx.execute("DELETE FROM repo_digests WHERE reference = ?1", [r])?;
        }
        tx.commit()?;
        Ok(n)
    }

    // ---- containers ---------------------------------------------------------------------------

    pub fn insert_container(&self, c: &ContainerRecord) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if let Some(existing_id) = container_by_name(&tx, &c.name)? {
            return Err(StorageError::NameConflict {
                name: c.name.clone(),
                existing_id,
            });
        }
        let r = tx.execute(
            &format!("INSERT INTO containers ({CONTAINER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![c.id, c.name, c.image_id, c.config, c.state, c.created],
        );
        match r {
            Ok(_) => {}
            Err(e) if constraint(&e) == Some(SQLITE_CONSTRAINT_PRIMARYKEY) => {
                return Err(StorageError::ContainerExists(c.id.clone()))
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit()?;
        Ok(())
    }

    pub fn update_container_state(&self, id: &str, state_json: &str) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE containers SET state = ?2 WHERE id = ?1",
            params![id, state_json],
        )?;
        if n == 0 {
            return Err(StorageError::ContainerNotFound(id.to_owned()));
        }
        Ok(())
    }

    pub fn rename_container(&self, id: &str, new_name: &str) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        match container_by_name(&tx, new_name)? {
            Some(existing_id) if existing_id != id => {
                return Err(StorageError::NameConflict {
                    name: new_name.to_owned(),
                    existing_id,
                })
            }
            _ => {}
        }
        let n = tx.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, new_name],
        )?;
        if n == 0 {
            return Err(StorageError::ContainerNotFound(id.to_owned()));
        }
        tx.commit()?;
        Ok(())
    }

    pub fn delete_container(&self, id: &str) -> Result<()> {
        let n = self
            .lock()
            .execute("DELETE FROM containers WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(StorageError::ContainerNotFound(id.to_owned()));
        }
        Ok(())
    }

    pub fn get_container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        Ok(self
            .lock()
            .query_row(
                &format!("SELECT {CONTAINER_COLS} FROM containers WHERE id = ?1"),
                [id],
                container_row,
            )
            .optional()?)
    }

    /// Looks a container up by its exact name (without Docker's leading '/': storage keeps what it is given).
    pub fn get_container_by_name(&self, name: &str) -> Result<Option<ContainerRecord>> {
        Ok(self
            .lock()
            .query_row(
                &format!("SELECT {CONTAINER_COLS} FROM containers WHERE name = ?1"),
                [name],
                container_row,
            )
            .optional()?)
    }

    pub fn list_containers(&self) -> Result<Vec<ContainerRecord>> {
        let conn = self.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {CONTAINER_COLS} FROM containers ORDER BY created, id"
        ))?;
        let rows = st.query_map([], container_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count_containers_using_image(&self, image_id: &str) -> Result<i64> {
        Ok(self.lock().query_row(
            "SELECT COUNT(*) FROM containers WHERE image_id = ?1",
            [image_id],
            |r| r.get(0),
        )?)
    }

    // ---- snapshots (used by the snapshotter; not for the engine) ------------------------------

    pub fn insert_snapshot(&self, s: &SnapshotRecord) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if let Some(p) = &s.parent {
            check_parent(&tx, p)?;
        }
        let r = tx.execute(
            &format!("INSERT INTO snapshots ({SNAPSHOT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![s.key, s.id, s.parent, s.kind.as_str(), s.created],
        );
        match r {
            Ok(_) => {}
            Err(e)
                if matches!(
                    constraint(&e),
                    Some(SQLITE_CONSTRAINT_PRIMARYKEY | SQLITE_CONSTRAINT_UNIQUE)
                ) =>
            {
                return Err(StorageError::SnapshotExists(s.key.clone()))
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get_snapshot(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        snapshot_get(&self.lock(), key)
    }

    pub fn list_snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        let conn = self.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {SNAPSHOT_COLS} FROM snapshots ORDER BY id"
        ))?;
        let rows = st.query_map([], snapshot_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn snapshot_children(&self, key: &str) -> Result<Vec<String>> {
        snapshot_children(&self.lock(), key)
    }

    /// Turns the active snapshot `key` into the committed snapshot `name`, atomically.
    pub fn commit_snapshot(&self, key: &str, name: &str) -> Result<SnapshotRecord> {
        self.commit_snapshot_as(key, name, None)
    }

    /// [`Self::commit_snapshot`] that also gives the snapshot a new parent (`None`: none), in
    /// the same transaction: a layer unpacked on its own is put on its parent as it is
    /// committed. The parent must be committed.
    pub fn commit_snapshot_with_parent(
        &self,
        key: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<SnapshotRecord> {
        self.commit_snapshot_as(key, name, Some(parent))
    }

    /// `reparent`: `None` keeps the parent, `Some(p)` sets it to `p`.
    fn commit_snapshot_as(
        &self,
        key: &str,
        name: &str,
        reparent: Option<Option<&str>>,
    ) -> Result<SnapshotRecord> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let cur = snapshot_get(&tx, key)?
            .ok_or_else(|| StorageError::SnapshotNotFound(key.to_owned()))?;
        if cur.kind != SnapshotKind::Active {
            return Err(StorageError::SnapshotWrongKind {
                key: key.to_owned(),
                expected: SnapshotKind::Active,
                actual: cur.kind,
            });
        }
        if snapshot_get(&tx, name)?.is_some() {
            return Err(StorageError::SnapshotExists(name.to_owned()));
        }
        // `name` is new and the parent committed, so no cycle can form.
        let parent = match reparent {
            Some(Some(p)) => {
                check_parent(&tx, p)?;
                Some(p.to_owned())
            }
            Some(None) => None,
            None => cur.parent.clone(),
        };
        let created = now_rfc3339();
        // An active snapshot never has children (insert refuses active parents), so renaming its
        // key cannot orphan a foreign key.
        tx.execute(
            "UPDATE snapshots SET key = ?2, kind = 'committed', created = ?3, parent = ?4
             WHERE key = ?1",
            params![key, name, created, parent],
        )?;
        tx.commit()?;
        Ok(SnapshotRecord {
            key: name.to_owned(),
            kind: SnapshotKind::Committed,
            created,
            parent,
            ..cur
        })
    }

    /// Deletes a snapshot record, refusing if it has children. Returns the deleted record.
    pub fn delete_snapshot(&self, key: &str) -> Result<SnapshotRecord> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let cur = snapshot_get(&tx, key)?
            .ok_or_else(|| StorageError::SnapshotNotFound(key.to_owned()))?;
        let children = snapshot_children(&tx, key)?;
        if !children.is_empty() {
            return Err(StorageError::SnapshotHasChildren {
                key: key.to_owned(),
                children,
            });
        }
        tx.execute("DELETE FROM snapshots WHERE key = ?1", [key])?;
        tx.commit()?;
        Ok(cur)
    }
}

fn container_by_name(tx: &Transaction<'_>, name: &str) -> Result<Option<String>> {
    Ok(tx
        .query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

fn snapshot_get(conn: &Connection, key: &str) -> Result<Option<SnapshotRecord>> {
    Ok(conn
        .query_row(
            &format!("SELECT {SNAPSHOT_COLS} FROM snapshots WHERE key = ?1"),
            [key],
            snapshot_row,
        )
        .optional()?)
}

/// A parent must exist and be committed: only frozen snapshots can be built on.
fn check_parent(conn: &Connection, key: &str) -> Result<()> {
    match snapshot_get(conn, key)? {
        None => Err(StorageError::SnapshotNotFound(key.to_owned())),
        Some(p) if p.kind != SnapshotKind::Committed => Err(StorageError::SnapshotWrongKind {
            key: key.to_owned(),
            expected: SnapshotKind::Committed,
            actual: p.kind,
        }),
        Some(_) => Ok(()),
    }
}

fn snapshot_children(conn: &Connection, key: &str) -> Result<Vec<String>> {
    let mut st = conn.prepare("SELECT key FROM snapshots WHERE parent = ?1 ORDER BY key")?;
    let rows = st.query_map([key], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction()?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
        // PRAGMA does not take bound parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    // All migrations and the version bump commit together, so a crash mid-way re-runs them all.
    tx.commit()?;
    Ok(())
}

/// Inserts or replaces an image record (same id → fields updated, tags kept).
/// Points `reference` at `image_id`, moving it from any image it named before.
fn point_tag(tx: &rusqlite::Connection, reference: &str, image_id: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO tags (reference, image_id, created) VALUES (?1, ?2, ?3)
         ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id,
           created = excluded.created",
        params![reference, image_id, now_rfc3339()],
    )?;
    Ok(())
}

fn upsert_image(conn: &rusqlite::Connection, img: &ImageRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO images (id, manifest_digest, config_digest, chain_id, size, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
           config_digest = excluded.config_digest, chain_id = excluded.chain_id,
           size = excluded.size, created = excluded.created",
        params![
            img.id,
            img.manifest_digest,
            img.config_digest,
            img.chain_id,
            img.size,
            img.created
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: &str) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            manifest_digest: "sha256:m".into(),
            config_digest: id.into(),
            chain_id: "sha256:c".into(),
            size: 42,
            created: "2024-01-01T00:00:00Z".into(),
        }
    }

    fn ctr(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: name.into(),
            image_id: "sha256:aaaa".into(),
            config: "{}".into(),
            state: "{\"Status\":\"created\"}".into(),
            created: now_rfc3339(),
        }
    }

    #[test]
    fn migrations_are_idempotent_and_pragmas_set() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/meta.db");
        {
            let db = Db::open(&p).unwrap();
            assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
            db.put_image(&img("sha256:aaaa")).unwrap();
            let conn = db.lock();
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let fk: i64 = conn
                .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .unwrap();
            assert_eq!(fk, 1);
        }
        let db = Db::open(&p).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(db.list_images().unwrap().len(), 1);
    }

    #[test]
    fn an_image_and_its_tag_commit_together_and_tags_go_together() {
        let db = Db::open_in_memory().unwrap();
        db.put_image_tagged(&img("sha256:aaaa"), Some("docker.io/library/a:1"))
            .unwrap();
        assert_eq!(
            db.resolve_tag("docker.io/library/a:1").unwrap().as_deref(),
            Some("sha256:aaaa")
        );
        db.put_image_tagged(&img("sha256:bbbb"), None).unwrap();
        assert!(db.tags_for("sha256:bbbb").unwrap().is_empty());
        db.set_tag("docker.io/library/a:2", "sha256:aaaa").unwrap();
        let tags = db.tags_for("sha256:aaaa").unwrap();
        assert_eq!(db.remove_tags(&tags).unwrap(), 2);
        assert!(db.tags_for("sha256:aaaa").unwrap().is_empty());
        assert!(db.get_image("sha256:aaaa").unwrap().is_some());
        // Deleting the image takes its tags in the same statement.
        db.set_tag("docker.io/library/a:3", "sha256:aaaa").unwrap();
        db.delete_image("sha256:aaaa").unwrap();
        assert!(db.resolve_tag("docker.io/library/a:3").unwrap().is_none());
    }

    #[test]
    fn a_load_saves_every_image_and_tag_or_none() {
        let db = Db::open_in_memory().unwrap();
        db.put_image(&img("sha256:old")).unwrap();
        db.set_tag("a:1", "sha256:old").unwrap();
        let tags = vec![
            ("a:1".to_string(), "sha256:aaaa".to_string()),
            ("b:1".to_string(), "sha256:bbbb".to_string()),
            ("c:1".to_string(), "sha256:old".to_string()),
        ];
        db.put_loaded_images(&[img("sha256:aaaa"), img("sha256:bbbb")], &tags)
            .unwrap();
        assert_eq!(
            db.resolve_tag("a:1").unwrap().as_deref(),
            Some("sha256:aaaa")
        );
        assert_eq!(
            db.resolve_tag("b:1").unwrap().as_deref(),
            Some("sha256:bbbb")
        );
        assert_eq!(
            db.resolve_tag("c:1").unwrap().as_deref(),
            Some("sha256:old")
        );
        // A tag naming an image that is neither recorded nor in the load: nothing is saved.
        let bad = vec![
            ("d:1".to_string(), "sha256:dddd".to_string()),
            ("e:1".to_string(), "sha256:nope".to_string()),
        ];
        let err = db
            .put_loaded_images(&[img("sha256:dddd")], &bad)
            .unwrap_err();
        assert!(matches!(err, StorageError::ImageNotFound(_)), "{err:?}");
        assert!(db.get_image("sha256:dddd").unwrap().is_none());
        assert!(db.resolve_tag("d:1").unwrap().is_none());
    }

    #[test]
    fn a_pull_saves_its_record_tag_and_digest_together() {
        let db = Db::open_in_memory().unwrap();
        let a = img("sha256:aaaa");
        db.put_pulled_image(&a, true, Some("x:1"), Some("x@sha256:d1"), false)
            .unwrap();
        assert_eq!(
            db.resolve_tag("x:1").unwrap().as_deref(),
            Some("sha256:aaaa")
        );
        assert_eq!(db.repo_digests_for("sha256:aaaa").unwrap(), ["x@sha256:d1"]);
        // A pull by tag keeps a digest that already names another image; one by digest moves it.
        let b = img("sha256:bbbb");
        db.put_pulled_image(&b, true, None, Some("x@sha256:d1"), false)
            .unwrap();
        assert_eq!(
            db.resolve_repo_digest("x@sha256:d1").unwrap().as_deref(),
            Some("sha256:aaaa")
        );
        db.put_pulled_image(&b, false, None, Some("x@sha256:d1"), true)
            .unwrap();
        assert_eq!(
            db.resolve_repo_digest("x@sha256:d1").unwrap().as_deref(),
            Some("sha256:bbbb")
        );
        // Names only for an image that is not there: nothing is saved.
        let ghost = img("sha256:cccc");
        assert!(db
            .put_pulled_image(&ghost, false, Some("y:1"), Some("y@sha256:d2"), true)
            .unwrap_err()
            .is_not_found());
        assert!(db.resolve_tag("y:1").unwrap().is_none());
        // Names go together, and with their image.
        db.put_pulled_image(&a, false, None, Some("x@sha256:d3"), false)
            .unwrap();
        assert_eq!(
            db.remove_references(&["x:1".into(), "x@sha256:d3".into(), "nope".into()])
                .unwrap(),
            2
        );
        assert!(db.repo_digests_for("sha256:aaaa").unwrap().is_empty());
        db.delete_image("sha256:bbbb").unwrap();
        assert!(db.list_repo_digests().unwrap().is_empty());
    }

    #[test]
    fn version_one_databases_gain_repo_digests() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("meta.db");
        {
            let mut c = Connection::open(&p).unwrap();
            let tx = c.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.execute_batch("PRAGMA user_version = 1").unwrap();
            tx.commit().unwrap();
            c.execute(
                "INSERT INTO images (id, manifest_digest, config_digest, chain_id, size, created)
                 VALUES ('sha256:aaaa', 'm', 'c', 'ch', 1, 't')",
                [],
            )
            .unwrap();
        }
        let db = Db::open(&p).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(db.list_images().unwrap().len(), 1);
        db.put_pulled_image(&img("sha256:aaaa"), false, None, Some("x@sha256:d"), false)
            .unwrap();
        assert_eq!(db.repo_digests_for("sha256:aaaa").unwrap(), ["x@sha256:d"]);
    }

    #[test]
    fn a_child_image_keeps_its_parent_until_it_goes() {
        let db = Db::open_in_memory().unwrap();
        db.put_image(&img("sha256:p")).unwrap();
        db.put_child_image(
            &img("sha256:c"),
            "sha256:p",
            Some("docker.io/library/c:latest"),
        )
        .unwrap();
        assert_eq!(
            db.parent_of("sha256:c").unwrap().as_deref(),
            Some("sha256:p")
        );
        assert_eq!(db.children_of("sha256:p").unwrap(), ["sha256:c"]);
        assert_eq!(
            db.resolve_tag("docker.io/library/c:latest")
                .unwrap()
                .as_deref(),
            Some("sha256:c")
        );
        db.delete_image("sha256:c").unwrap();
        assert!(db.children_of("sha256:p").unwrap().is_empty());
        assert_eq!(db.parent_of("sha256:c").unwrap(), None);
    }

    #[test]
    fn volumes_insert_once_list_and_delete() {
        let db = Db::open_in_memory().unwrap();
        let v = VolumeRecord {
            name: "data".into(),
            driver: "local".into(),
            labels: "{}".into(),
            options: "{}".into(),
            created: "t".into(),
        };
        assert!(db.insert_volume(&v).unwrap());
        let again = VolumeRecord {
            labels: r#"{"a":"b"}"#.into(),
            ..v.clone()
        };
        assert!(!db.insert_volume(&again).unwrap());
        assert_eq!(db.get_volume("data").unwrap(), Some(v.clone()));
        assert_eq!(db.list_volumes().unwrap(), [v]);
        assert!(db.delete_volume("data").unwrap());
        assert!(!db.delete_volume("data").unwrap());
        assert_eq!(db.get_volume("data").unwrap(), None);
    }

    #[test]
    fn a_full_disk_is_known_as_such() {
        let full = StorageError::io(
            "write",
            "/x",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(full.is_disk_full());
        let sqlite_full = StorageError::Db(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ));
        assert!(sqlite_full.is_disk_full());
        let other = StorageError::io("write", "/x", std::io::Error::from_raw_os_error(libc::EIO));
        assert!(!other.is_disk_full());
    }

    #[test]
    fn refuses_newer_schema() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("meta.db");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch("PRAGMA user_version = 99").unwrap();
        }
        assert!(matches!(
            Db::open(&p),
            Err(StorageError::SchemaTooNew { found: 99, .. })
        ));
    }

    #[test]
    fn images_and_prefix() {
        let db = Db::open_in_memory().unwrap();
        db.put_image(&img("sha256:abc1")).unwrap();
        db.put_image(&img("sha256:abc2")).unwrap();
        db.put_image(&img("sha256:def")).unwrap();
        let mut changed = img("sha256:def");
        changed.size = 7;
        db.put_image(&changed).unwrap();
        assert_eq!(db.get_image("sha256:def").unwrap().unwrap().size, 7);
        assert_eq!(db.find_images_by_prefix("abc").unwrap().len(), 2);
        assert_eq!(db.find_images_by_prefix("sha256:abc1").unwrap().len(), 1);
        assert_eq!(db.find_images_by_prefix("a%").unwrap().len(), 0);
        db.delete_image("sha256:def").unwrap();
        assert!(db.delete_image("sha256:def").unwrap_err().is_not_found());
        assert_eq!(db.list_images().unwrap().len(), 2);
    }

    #[test]
    fn tags_move_and_cascade() {
        let db = Db::open_in_memory().unwrap();
        db.put_image(&img("sha256:a")).unwrap();
        db.put_image(&img("sha256:b")).unwrap();
        db.set_tag("docker.io/library/x:latest", "sha256:a")
            .unwrap();
        assert_eq!(
            db.resolve_tag("docker.io/library/x:latest")
                .unwrap()
                .as_deref(),
            Some("sha256:a")
        );
        db.set_tag("docker.io/library/x:latest", "sha256:b")
            .unwrap();
        assert_eq!(
            db.resolve_tag("docker.io/library/x:latest")
                .unwrap()
                .as_deref(),
            Some("sha256:b")
        );
        assert!(db.tags_for("sha256:a").unwrap().is_empty());
        assert_eq!(
            db.tags_for("sha256:b").unwrap(),
            vec!["docker.io/library/x:latest"]
        );
        assert!(db.set_tag("y:1", "sha256:nope").unwrap_err().is_not_found());
        db.set_tag("y:1", "sha256:b").unwrap();
        assert_eq!(db.list_tags().unwrap().len(), 2);
        assert!(db.remove_tag("y:1").unwrap());
        assert!(!db.remove_tag("y:1").unwrap());
        db.delete_image("sha256:b").unwrap();
        assert!(db.list_tags().unwrap().is_empty());
    }

    #[test]
    fn containers_names_and_rename() {
        let db = Db::open_in_memory().unwrap();
        db.insert_container(&ctr("c1", "web")).unwrap();
        match db.insert_container(&ctr("c2", "web")) {
            Err(StorageError::NameConflict { name, existing_id }) => {
                assert_eq!((name.as_str(), existing_id.as_str()), ("web", "c1"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            db.insert_container(&ctr("c1", "other")),
            Err(StorageError::ContainerExists(_))
        ));
        db.insert_container(&ctr("c2", "db")).unwrap();
        assert!(matches!(
            db.rename_container("c2", "web"),
            Err(StorageError::NameConflict { .. })
        ));
        db.rename_container("c2", "db2").unwrap();
        db.rename_container("c2", "db2").unwrap();
        assert!(db.rename_container("zz", "q").unwrap_err().is_not_found());
        assert_eq!(db.get_container_by_name("db2").unwrap().unwrap().id, "c2");
        db.update_container_state("c2", "{\"Status\":\"running\"}")
            .unwrap();
        let c2 = db.get_container("c2").unwrap().unwrap();
        assert_eq!(c2.state, "{\"Status\":\"running\"}");
        assert_eq!(c2.config, "{}");
        assert!(db
            .update_container_state("zz", "{}")
            .unwrap_err()
            .is_not_found());
        assert_eq!(db.count_containers_using_image("sha256:aaaa").unwrap(), 2);
        db.delete_container("c1").unwrap();
        assert!(db.delete_container("c1").unwrap_err().is_not_found());
        assert_eq!(db.list_containers().unwrap().len(), 1);
        // The freed name is reusable.
        db.insert_container(&ctr("c3", "web")).unwrap();
    }

    #[test]
    fn snapshot_records() {
        let db = Db::open_in_memory().unwrap();
        let rec = |key: &str, id, parent: Option<&str>, kind| SnapshotRecord {
            key: key.into(),
            id,
            parent: parent.map(Into::into),
            kind,
            created: now_rfc3339(),
        };
        db.insert_snapshot(&rec("a", 1, None, SnapshotKind::Active))
            .unwrap();
        assert!(matches!(
            db.insert_snapshot(&rec("b", 2, Some("a"), SnapshotKind::Active)),
            Err(StorageError::SnapshotWrongKind { .. })
        ));
        assert!(db
            .insert_snapshot(&rec("b", 2, Some("zz"), SnapshotKind::Active))
            .unwrap_err()
            .is_not_found());
        db.commit_snapshot("a", "A").unwrap();
        db.insert_snapshot(&rec("b", 2, Some("A"), SnapshotKind::Active))
            .unwrap();
        assert!(matches!(
            db.delete_snapshot("A"),
            Err(StorageError::SnapshotHasChildren { .. })
        ));
        assert_eq!(db.snapshot_children("A").unwrap(), vec!["b"]);
        db.delete_snapshot("b").unwrap();
        db.delete_snapshot("A").unwrap();
        assert!(db.list_snapshots().unwrap().is_empty());
    }

    #[test]
    fn commit_with_a_new_parent() {
        let db = Db::open_in_memory().unwrap();
        let rec = |key: &str, id, parent: Option<&str>| SnapshotRecord {
            key: key.into(),
            id,
            parent: parent.map(Into::into),
            kind: SnapshotKind::Active,
            created: now_rfc3339(),
        };
        db.insert_snapshot(&rec("base-tmp", 1, None)).unwrap();
        db.commit_snapshot("base-tmp", "base").unwrap();
        db.insert_snapshot(&rec("other", 2, None)).unwrap();
        db.insert_snapshot(&rec("top-tmp", 3, None)).unwrap();
        // A missing or active parent is refused and changes nothing.
        assert!(db
            .commit_snapshot_with_parent("top-tmp", "top", Some("nope"))
            .unwrap_err()
            .is_not_found());
        assert!(matches!(
            db.commit_snapshot_with_parent("top-tmp", "top", Some("other")),
            Err(StorageError::SnapshotWrongKind { .. })
        ));
        let t = db.get_snapshot("top-tmp").unwrap().unwrap();
        assert_eq!((t.kind, t.parent), (SnapshotKind::Active, None));
        let top = db
            .commit_snapshot_with_parent("top-tmp", "top", Some("base"))
            .unwrap();
        assert_eq!(top.parent.as_deref(), Some("base"));
        assert_eq!(db.get_snapshot("top").unwrap().unwrap(), top);
        assert!(db.get_snapshot("top-tmp").unwrap().is_none());
        assert_eq!(db.snapshot_children("base").unwrap(), vec!["top"]);
        // `None` takes a parent away; a plain commit keeps the one it has.
        db.insert_snapshot(&rec("x-tmp", 4, Some("base"))).unwrap();
        let x = db.commit_snapshot_with_parent("x-tmp", "x", None).unwrap();
        assert_eq!(x.parent, None);
        db.insert_snapshot(&rec("y-tmp", 5, Some("base"))).unwrap();
        let y = db.commit_snapshot("y-tmp", "y").unwrap();
        assert_eq!(y.parent.as_deref(), Some("base"));
    }
}
