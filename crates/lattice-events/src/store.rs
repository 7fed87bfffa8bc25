//! The durable store: SQLite in WAL mode with `synchronous = FULL`, so a batch is on disk when
//! [`EventStore::append`] returns and a crash (even a power cut) cannot lose it. One writer
//! connection; readers (export, replay) may run beside it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use crate::event::Event;

/// The store's schema version, kept in `PRAGMA user_version`.
/// 2: decisions carry the learning fields (`probability`, `segment`, `prior`); 3: and the
/// action the customer was held out of (`held_out`); 4: and the arm that decided (`arm`).
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT UNIQUE,
    customer_id TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    channel TEXT,
    category TEXT,
    amount REAL,
    quantity REAL,
    order_id TEXT,
    sentiment REAL,
    action_id TEXT,
    decision_id TEXT,
    received_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_us);
-- Only the events a decision's outcome can be (those naming an action): a full index on
-- customer_id cost a fifth of the ingestion rate.
CREATE INDEX IF NOT EXISTS events_outcomes ON events (customer_id, action_id)
    WHERE action_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    decided_us INTEGER NOT NULL,
    model TEXT NOT NULL,
    probability REAL,
    segment INTEGER,
    prior REAL,
    held_out TEXT,
    arm TEXT
);
CREATE TABLE IF NOT EXISTS decision_actions (
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    rank INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    send_at_us INTEGER,
    score REAL NOT NULL,
    PRIMARY KEY (decision_id, rank)
);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take writes now (disk or size limit full, read-only file, I/O
    /// error): answer 503 and let the client retry; nothing was acknowledged.
    #[error("events database {path} cannot take writes: {detail}")]
    Unavailable { path: PathBuf, detail: String },
    #[error("events database {path}: {detail}")]
    Other { path: PathBuf, detail: String },
    /// The caller gave up before the batch was committed; it was rolled back.
    #[error("the request was abandoned before its batch was committed; nothing was stored")]
    Abandoned,
    /// Event ids already stored (or repeated in the batch) with different content; nothing
    /// of the batch was stored.
    #[error("{} event id(s) reused with different content", .0.len())]
    Conflict(Vec<Conflict>),
}

/// An event whose `event_id` is already taken by an event with other content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// Position of the event in the batch.
    pub index: usize,
    pub event_id: String,
}

impl StoreError {
    fn from_sqlite(path: &Path, e: rusqlite::Error) -> Self {
        let unavailable = matches!(
            e.sqlite_error_code(),
            Some(
                ErrorCode::DiskFull
                    | ErrorCode::ReadOnly
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::PermissionDenied
            )
        );
        let (path, detail) = (path.to_path_buf(), e.to_string());
        if unavailable {
            StoreError::Unavailable { path, detail }
        } else {
            StoreError::Other { path, detail }
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// What [`EventStore::append`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// Stored now.
    pub stored: usize,
    /// Skipped: their `event_id` was already stored with the same content (a retried batch).
    pub duplicates: usize,
}

/// A next-best-actions answer as recorded in the decision log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub decision_id: String,
    pub customer_id: String,
    pub decided_us: i64,
    /// The model's name and as_of that made it.
    pub model: String,
    /// The probability with which the first action was chosen (off-policy evaluation needs
    /// it); `None` for decisions recorded before learning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// The customer's segment (tier × churn band index) when decided, for learning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<u32>,
    /// The first action's static propensity (the model's or the kind's) when decided: the
    /// centre of its cell's prior.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior: Option<f64>,
    /// The promotional action the customer was held out of (control group) when it would
    /// have been chosen: the decision then also observes that action's control arm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_out: Option<String>,
    /// `challenger` when a challenger model decided (champion/challenger); `None`: the
    /// champion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    pub actions: Vec<DecidedAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecidedAction {
    pub rank: u32,
    pub action_id: String,
    pub channel: String,
    pub send_at_us: Option<i64>,
    pub score: f64,
    /// The first `contact` event for this action after the decision (the loop closed).
    pub contacted_us: Option<i64>,
    /// The first `redemption` event for this action after the decision.
    pub redeemed_us: Option<i64>,
}

pub struct EventStore {
    conn: Connection,
    path: PathBuf,
}

impl EventStore {
    /// Opens (creating if needed) the database at `path` for writing. `max_bytes` caps its
    /// size: past it, writes fail as [`StoreError::Unavailable`] like a full disk would.
    pub fn open(path: &Path, max_bytes: Option<u64>) -> Result<Self> {
        let e = |err| StoreError::from_sqlite(path, err);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| StoreError::Unavailable {
                path: path.to_path_buf(),
                detail: format!("cannot create directory {}: {err}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(e)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(e)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Other {
                path: path.to_path_buf(),
                detail: format!("could not switch to WAL mode (journal mode is {mode})"),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        // Checkpoint every ~16 MB of log rather than 4 MB: the index pages each commit rewrites
        // are then copied into the database once per checkpoint instead of four times.
        conn.pragma_update(None, "wal_autocheckpoint", 4000)
            .map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(e)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(e)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Other {
                path: path.to_path_buf(),
                detail: format!(
                    "schema version {version} is newer than this lattice's ({SCHEMA_VERSION})"
                ),
            });
        }
        conn.execute_batch(SCHEMA).map_err(e)?;
        if version == 1 {
            // A version-1 log: its decisions table predates the learning fields.
            conn.execute_batch(
                "ALTER TABLE decisions ADD COLUMN probability REAL;
                 ALTER TABLE decisions ADD COLUMN segment INTEGER;
                 ALTER TABLE decisions ADD COLUMN prior REAL;",
            )
            .map_err(e)?;
        }
        if (1..=2).contains(&version) {
            conn.execute_batch("ALTER TABLE decisions ADD COLUMN held_out TEXT;")
                .map_err(e)?;
        }
        if (1..=3).contains(&version) {
            conn.execute_batch("ALTER TABLE decisions ADD COLUMN arm TEXT;")
                .map_err(e)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(e)?;
        if let Some(max) = max_bytes {
            let page: i64 = conn
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .map_err(e)?;
            let pages = (max as i64 / page).max(1);
            conn.pragma_update(None, "max_page_count", pages)
                .map_err(e)?;
        }
        Ok(EventStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing database read-only (export, inspection), beside a running server.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(StoreError::Other {
                path: path.to_path_buf(),
                detail: "no such file".into(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::from_sqlite(path, e))?;
        Ok(EventStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, e)
    }

    /// Stores a batch in one transaction, committed (and synced) before returning. Events whose
    /// `event_id` is already stored with the same content are skipped (a retried batch);
    /// `applied[i]` says whether event `i` is new (only new events should change online state).
    ///
    /// An `event_id` already stored (or repeated in the batch) with different content is a
    /// conflict: nothing of the batch is stored and [`StoreError::Conflict`] lists them all.
    ///
    /// `proceed(false)` is asked before the transaction starts and `proceed(true)` just before
    /// it commits (a `true` then is final: the batch will be stored). A `false` (the request's
    /// deadline passed, the client left) rolls everything back and answers
    /// [`StoreError::Abandoned`], so a caller that gave up never stores anything.
    pub fn append(
        &mut self,
        events: &[Event],
        received_us: i64,
        applied: &mut Vec<bool>,
        proceed: &dyn Fn(bool) -> bool,
    ) -> Result<Appended> {
        applied.clear();
        if !proceed(false) {
            return Err(StoreError::Abandoned);
        }
        let path = self.path.clone();
        let e = |err| StoreError::from_sqlite(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        let mut stored = 0;
        let mut conflicts = Vec::new();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (event_id, customer_id, ts_us, event_type, channel, \
                     category, amount, quantity, order_id, sentiment, action_id, decision_id, \
                     received_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .map_err(e)?;
            let mut existing = tx
                .prepare_cached(
                    "SELECT customer_id, ts_us, event_type, channel, category, amount, quantity, \
                     order_id, sentiment, action_id, event_id, decision_id FROM events \
                     WHERE event_id = ?1",
                )
                .map_err(e)?;
            for (index, ev) in events.iter().enumerate() {
                let n = insert
                    .execute(params![
                        ev.event_id,
                        ev.customer_id,
                        ev.ts_us,
                        ev.event_type,
                        ev.channel,
                        ev.category,
                        ev.amount,
                        ev.quantity,
                        ev.order_id,
                        ev.sentiment,
                        ev.action_id,
                        ev.decision_id,
                        received_us
                    ])
                    .map_err(e)?;
                if n == 0
                    && let Some(id) = &ev.event_id
                {
                    // Skipped as already stored: the same event, or another one reusing its id.
                    let stored_ev = existing
                        .query_row(params![id], |r| {
                            Ok(Event {
                                customer_id: r.get(0)?,
                                ts_us: r.get(1)?,
                                event_type: r.get(2)?,
                                channel: r.get(3)?,
                                category: r.get(4)?,
                                amount: r.get(5)?,
                                quantity: r.get(6)?,
                                order_id: r.get(7)?,
                                sentiment: r.get(8)?,
                                action_id: r.get(9)?,
                                event_id: r.get(10)?,
                                decision_id: r.get(11)?,
                            })
                        })
                        .map_err(e)?;
                    if &stored_ev != ev {
                        conflicts.push(Conflict {
                            index,
                            event_id: id.clone(),
                        });
                    }
                }
                applied.push(n == 1);
                stored += n;
            }
        }
        if !conflicts.is_empty() {
            // Dropping the transaction rolls it back.
            applied.clear();
            return Err(StoreError::Conflict(conflicts));
        }
        // The last moment to give up: after this the batch is stored, whatever the caller does.
        if !proceed(true) {
            applied.clear();
            return Err(StoreError::Abandoned);
        }
        tx.commit().map_err(e)?;
        Ok(Appended {
            stored,
            duplicates: events.len() - stored,
        })
    }

    /// Calls `f` with every stored event later than `after_us`, in the order they were stored
    /// (the order the online state first saw them). Returns how many.
    pub fn replay(&self, after_us: i64, mut f: impl FnMut(Event)) -> Result<u64> {
        self.scan("WHERE ts_us > ?1", after_us, |_, e| {
            f(e);
            Ok(())
        })
    }

    /// [`Self::replay`] of the `unsubscribe` events only (consent changes, without the cost of
    /// reading and applying everything else).
    pub fn replay_unsubscribes(&self, after_us: i64, mut f: impl FnMut(Event)) -> Result<u64> {
        self.scan(
            "WHERE ts_us > ?1 AND event_type = 'unsubscribe'",
            after_us,
            |_, e| {
                f(e);
                Ok(())
            },
        )
    }

    /// Every stored event with its storage sequence number, in storage order.
    pub fn for_each(&self, f: impl FnMut(i64, Event) -> Result<()>) -> Result<u64> {
        self.scan("WHERE ?1 = ?1", 0, f)
    }

    /// The events `filter` (a WHERE clause on `?1` = `arg`) keeps, in storage order.
    fn scan(
        &self,
        filter: &str,
        arg: i64,
        mut f: impl FnMut(i64, Event) -> Result<()>,
    ) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT seq, customer_id, ts_us, event_type, channel, category, amount, \
                 quantity, order_id, sentiment, action_id, event_id, decision_id \
                 FROM events {filter} ORDER BY seq"
            ))
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([arg]).map_err(|e| self.err(e))?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let get = || -> rusqlite::Result<(i64, Event)> {
                Ok((
                    r.get(0)?,
                    Event {
                        customer_id: r.get(1)?,
                        ts_us: r.get(2)?,
                        event_type: r.get(3)?,
                        channel: r.get(4)?,
                        category: r.get(5)?,
                        amount: r.get(6)?,
                        quantity: r.get(7)?,
                        order_id: r.get(8)?,
                        sentiment: r.get(9)?,
                        action_id: r.get(10)?,
                        event_id: r.get(11)?,
                        decision_id: r.get(12)?,
                    },
                ))
            };
            let (seq, ev) = get().map_err(|e| self.err(e))?;
            f(seq, ev)?;
            n += 1;
        }
        Ok(n)
    }

    /// Records a decision and its ranked actions, committed before returning.
    /// Decisions in the log.
    pub fn decision_count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM decisions", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    pub fn record_decision(&mut self, d: &Decision) -> Result<()> {
        let path = self.path.clone();
        let e = |err| StoreError::from_sqlite(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO decisions (decision_id, customer_id, decided_us, model, probability, \
             segment, prior, held_out, arm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                d.decision_id,
                d.customer_id,
                d.decided_us,
                d.model,
                d.probability,
                d.segment,
                d.prior,
                d.held_out,
                d.arm
            ],
        )
        .map_err(e)?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO decision_actions (decision_id, rank, action_id, channel, \
                     send_at_us, score) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(e)?;
            for a in &d.actions {
                ins.execute(params![
                    d.decision_id,
                    a.rank,
                    a.action_id,
                    a.channel,
                    a.send_at_us,
                    a.score
                ])
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// A recorded decision with what followed it: for each action, the first `contact` and
    /// `redemption` event of the same customer and action after the decision (or carrying its
    /// `decision_id`).
    pub fn decision(&self, id: &str) -> Result<Option<Decision>> {
        let head = self
            .conn
            .query_row(
                "SELECT customer_id, decided_us, model, probability, segment, prior, held_out, \
                 arm FROM decisions WHERE decision_id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?),
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((customer_id, decided_us, model, (probability, segment, prior, held_out, arm))) =
            head
        else {
            return Ok(None);
        };
        let actions = self.decided_actions(id, &customer_id, decided_us)?;
        Ok(Some(Decision {
            decision_id: id.to_string(),
            customer_id,
            decided_us,
            model,
            probability,
            segment,
            prior,
            held_out,
            arm,
            actions,
        }))
    }

    fn decided_actions(
        &self,
        id: &str,
        customer_id: &str,
        decided_us: i64,
    ) -> Result<Vec<DecidedAction>> {
        let mut stmt = self
            .conn
            .prepare_cached(OUTCOMES)
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![id, customer_id, decided_us], |r| {
                Ok(DecidedAction {
                    rank: r.get(0)?,
                    action_id: r.get(1)?,
                    channel: r.get(2)?,
                    send_at_us: r.get(3)?,
                    score: r.get(4)?,
                    contacted_us: r.get(5)?,
                    redeemed_us: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Every recorded decision with its outcomes, in the order they were made.
    pub fn for_each_decision(&self, mut f: impl FnMut(Decision) -> Result<()>) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT decision_id, customer_id, decided_us, model, probability, segment, prior, \
                 held_out, arm FROM decisions ORDER BY decided_us, decision_id",
            )
            .map_err(|e| self.err(e))?;
        let heads = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?),
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        let n = heads.len() as u64;
        for (
            decision_id,
            customer_id,
            decided_us,
            model,
            (probability, segment, prior, held_out, arm),
        ) in heads
        {
            let actions = self.decided_actions(&decision_id, &customer_id, decided_us)?;
            f(Decision {
                decision_id,
                customer_id,
                decided_us,
                model,
                probability,
                segment,
                prior,
                held_out,
                arm,
                actions,
            })?;
        }
        Ok(n)
    }
}

/// The size on disk of the database at `path` (main file and write-ahead log), in bytes.
pub fn db_bytes(path: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    [path, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// The outcome of each decided action: the first matching contact and redemption after it.
const OUTCOMES: &str = "
SELECT a.rank, a.action_id, a.channel, a.send_at_us, a.score,
  (SELECT MIN(e.ts_us) FROM events e WHERE e.event_type = 'contact'
     AND e.customer_id = ?2 AND e.action_id = a.action_id
     AND (e.decision_id = ?1 OR (e.decision_id IS NULL AND e.ts_us >= ?3))),
  (SELECT MIN(e.ts_us) FROM events e WHERE e.event_type = 'redemption'
     AND e.customer_id = ?2 AND e.action_id = a.action_id
     AND (e.decision_id = ?1 OR (e.decision_id IS NULL AND e.ts_us >= ?3)))
FROM decision_actions a WHERE a.decision_id = ?1 ORDER BY a.rank";
