//! Streaming S3 objects into the (synchronous) metrics engine with bounded memory.
//!
//! Objects are consumed strictly in the given order (ground truth: the last label of an id wins;
//! capture: the first record of an id wins — key order makes both deterministic), while up to
//! `concurrency` objects ahead are already being downloaded. Each download hands its body over in
//! chunks of [`CHUNK_BYTES`] through a channel of [`CHUNKS_AHEAD`] chunks, so at most
//! `concurrency × (CHUNKS_AHEAD + 1) × CHUNK_BYTES` bytes of object data are in memory at once
//! (8 × 5 × 64 KiB = 2.5 MiB by default), whatever the objects' sizes. The engine runs on a
//! blocking thread and reads through a `std::io::BufRead` over the channel, so it parses lines with
//! its own `feed_*` readers (line numbers, UTF-8 checks and all).
//!
//! An object deleted between the listing and the read is skipped and counted — S3 answers 404, or
//! 403 AccessDenied when `s3:ListBucket` is scoped by prefix; a 403 counts as vanished only when a
//! fresh listing of the key no longer shows it ([`super::vanished_after_denial`]), else it is the
//! permission error it says. Any other read failure fails the run with the S3 error (retryable
//! when it is).

use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc};

use super::{ObjectStore, S3Uri};
use crate::error::AwsError;

pub const CHUNK_BYTES: usize = 64 * 1024;
pub const CHUNKS_AHEAD: usize = 4;

enum Piece {
    Data(Vec<u8>),
    Failed(AwsError),
    Missing,
}

struct ChannelReader {
    rx: mpsc::Receiver<Piece>,
    cur: Vec<u8>,
    pos: usize,
}

/// The error a reader returns for an object that vanished after it was listed.
#[derive(Debug, thiserror::Error)]
#[error("the object no longer exists")]
pub struct Vanished;

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.cur.len() {
                let n = out.len().min(self.cur.len() - self.pos);
                out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Data(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Some(Piece::Failed(e)) => return Err(io::Error::other(e)),
                Some(Piece::Missing) => {
                    return Err(io::Error::new(io::ErrorKind::NotFound, Vanished));
                }
                None => return Ok(0),
            }
        }
    }
}

/// Why streaming stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Aws(AwsError),
    /// The consumer failed reading `uri` (its error kept, e.g. the engine's typed error inside).
    #[error("{uri}: {error}")]
    Consumer { uri: String, error: io::Error },
    #[error("{0}")]
    Thread(String),
}

/// Recovers the S3 error an engine read failed with.
pub fn aws_error_of(e: &io::Error, uri: &S3Uri) -> AwsError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<AwsError>())
    {
        Some(a) => a.clone(),
        None => AwsError::transport("s3", "GetObject", format!("reading {uri}: {e}")),
    }
}

async fn download(store: Arc<dyn ObjectStore>, uri: S3Uri, tx: mpsc::Sender<Piece>) {
    let mut body = match store.open(&uri).await {
        Ok(b) => b,
        Err(e)
            if e.is_not_found()
                || (super::is_access_denied(&e)
                    && super::vanished_after_denial(store.as_ref(), &uri).await) =>
        {
            let _ = tx.send(Piece::Missing).await;
            return;
        }
        Err(e) => {
            let _ = tx.send(Piece::Failed(e)).await;
            return;
        }
    };
    loop {
        let mut buf = Vec::with_capacity(CHUNK_BYTES);
        let mut eof = false;
        while buf.len() < CHUNK_BYTES {
            match (&mut body)
                .take((CHUNK_BYTES - buf.len()) as u64)
                .read_to_end(&mut buf)
                .await
            {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    let err = AwsError::transport("s3", "GetObject", format!("reading {uri}: {e}"));
                    let _ = tx.send(Piece::Failed(err)).await;
                    return;
                }
            }
        }
        if !buf.is_empty() && tx.send(Piece::Data(buf)).await.is_err() {
            return; // the consumer stopped
        }
        if eof {
            return;
        }
    }
}

/// What happened to the objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamStats {
    pub objects: usize,
    pub vanished: usize,
}

/// Streams `objects` in order into `consume(state, uri, reader)`, which runs on a blocking thread
/// and gets `state` back when done.
pub async fn stream_objects<T, F>(
    store: Arc<dyn ObjectStore>,
    objects: Vec<S3Uri>,
    concurrency: usize,
    state: T,
    mut consume: F,
) -> Result<(T, StreamStats), ReadError>
where
    T: Send + 'static,
    F: FnMut(&mut T, &S3Uri, &mut dyn BufRead) -> Result<(), io::Error> + Send + 'static,
{
    let concurrency = concurrency.max(1);
    let (files_tx, mut files_rx) = mpsc::channel::<(S3Uri, mpsc::Receiver<Piece>)>(concurrency);
    let permits = Arc::new(Semaphore::new(concurrency));
    let producer = tokio::spawn(async move {
        for uri in objects {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
            let store = store.clone();
            let u = uri.clone();
            tokio::spawn(async move {
                download(store, u, tx).await;
                drop(permit);
            });
            if files_tx.send((uri, rx)).await.is_err() {
                return;
            }
        }
    });
    let consumer = tokio::task::spawn_blocking(move || {
        let mut state = state;
        let mut stats = StreamStats::default();
        while let Some((uri, rx)) = files_rx.blocking_recv() {
            stats.objects += 1;
            let mut reader = BufReader::with_capacity(
                CHUNK_BYTES,
                ChannelReader {
                    rx,
                    cur: Vec::new(),
                    pos: 0,
                },
            );
            match consume(&mut state, &uri, &mut reader) {
                Ok(()) => {}
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && e.get_ref().is_some_and(|i| i.is::<Vanished>()) =>
                {
                    tracing::warn!(object = %uri, "object vanished after listing; skipped");
                    stats.vanished += 1;
                }
                Err(e) => {
                    if e.get_ref().is_some_and(|i| i.is::<AwsError>()) {
                        return Err(ReadError::Aws(aws_error_of(&e, &uri)));
                    }
                    return Err(ReadError::Consumer {
                        uri: uri.to_string(),
                        error: e,
                    });
                }
            }
        }
        Ok((state, stats))
    });
    let result = consumer
        .await
        .map_err(|e| ReadError::Thread(format!("reader thread failed: {e}")))?;
    producer.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doubles::InMemoryStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn objects_arrive_whole_and_in_order_with_vanished_ones_skipped() {
        let store = Arc::new(InMemoryStore::default());
        let mut uris = Vec::new();
        for i in 0..20 {
            let body: String = (0..500)
                .map(|l| format!("file{i:02} line{l:03}\n"))
                .collect();
            let uri = format!("s3://bkt/data/{i:02}.jsonl");
            store.insert(&uri, body);
            uris.push(S3Uri::parse(&uri).unwrap());
        }
        uris.insert(3, S3Uri::parse("s3://bkt/data/gone.jsonl").unwrap());
        let (lines, stats) =
            stream_objects(store, uris, 4, Vec::<String>::new(), |acc, _uri, r| {
                for line in r.lines() {
                    acc.push(line?);
                }
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            stats,
            StreamStats {
                objects: 21,
                vanished: 1
            }
        );
        assert_eq!(lines.len(), 20 * 500);
        assert_eq!(lines[0], "file00 line000");
        assert_eq!(lines[500], "file01 line000");
        assert_eq!(lines.last().unwrap(), "file19 line499");
    }

    /// With `s3:ListBucket` scoped by prefix S3 answers 403 for a key deleted after the listing:
    /// skipped as vanished. A 403 on an object that is still listed is a real permission problem.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn access_denied_is_vanished_only_when_the_object_is_gone() {
        struct Denying(InMemoryStore);
        #[async_trait::async_trait]
        impl ObjectStore for Denying {
            async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, AwsError> {
                if uri.key.contains("secret") {
                    return Err(AwsError::classify(
                        "s3",
                        "GetObject",
                        Some("AccessDenied"),
                        Some(403),
                        "Access Denied",
                    ));
                }
                self.0.get(uri).await
            }
            async fn put(&self, u: &S3Uri, b: Vec<u8>, c: &str) -> Result<(), AwsError> {
                self.0.put(u, b, c).await
            }
            async fn list(&self, p: &S3Uri) -> Result<Vec<crate::storage::ObjectInfo>, AwsError> {
                self.0.list(p).await
            }
        }
        let inner = InMemoryStore::default();
        inner.deny_missing(true);
        inner.insert("s3://bkt/d/a", "a\n");
        inner.insert("s3://bkt/d/secret", "s\n");
        let store = Arc::new(Denying(inner));
        let uris = |keys: &[&str]| {
            keys.iter()
                .map(|k| S3Uri::parse(&format!("s3://bkt/d/{k}")).unwrap())
                .collect::<Vec<_>>()
        };
        let read = |acc: &mut Vec<String>, _: &S3Uri, r: &mut dyn BufRead| {
            for line in r.lines() {
                acc.push(line?);
            }
            Ok(())
        };
        let (lines, stats) =
            stream_objects(store.clone(), uris(&["a", "gone"]), 2, Vec::new(), read)
                .await
                .unwrap();
        assert_eq!((lines, stats.vanished), (vec!["a".to_owned()], 1));
        let err = stream_objects(store, uris(&["a", "secret"]), 2, Vec::new(), read)
            .await
            .unwrap_err();
        match err {
            ReadError::Aws(e) => assert_eq!(e.code.as_deref(), Some("AccessDenied")),
            other => panic!("{other}"),
        }
    }

    /// A store whose readers count how many are open at once.
    struct CountingStore {
        inner: InMemoryStore,
        open: Arc<std::sync::atomic::AtomicUsize>,
        max_open: Arc<std::sync::atomic::AtomicUsize>,
    }

    struct Counted {
        inner: std::io::Cursor<Vec<u8>>,
        open: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl tokio::io::AsyncRead for Counted {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl tokio::io::AsyncBufRead for Counted {
        fn poll_fill_buf(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<&[u8]>> {
            std::pin::Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
        }
        fn consume(mut self: std::pin::Pin<&mut Self>, amt: usize) {
            std::pin::Pin::new(&mut self.inner).consume(amt)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for CountingStore {
        async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, AwsError> {
            self.inner.get(uri).await
        }
        async fn put(
            &self,
            uri: &S3Uri,
            body: Vec<u8>,
            content_type: &str,
        ) -> Result<(), AwsError> {
            self.inner.put(uri, body, content_type).await
        }
        async fn list(&self, prefix: &S3Uri) -> Result<Vec<crate::storage::ObjectInfo>, AwsError> {
            self.inner.list(prefix).await
        }
        async fn open(&self, uri: &S3Uri) -> Result<crate::storage::ObjectReader, AwsError> {
            let body = self.inner.get(uri).await?;
            let now = self.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            self.max_open
                .fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            Ok(Box::new(Counted {
                inner: std::io::Cursor::new(body),
                open: self.open.clone(),
            }))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_run_ahead_concurrently_but_never_past_the_bound() {
        let store = CountingStore {
            inner: InMemoryStore::default(),
            open: Default::default(),
            max_open: Default::default(),
        };
        let line = "x".repeat(1023) + "\n";
        let mut uris = Vec::new();
        for i in 0..12 {
            let uri = format!("s3://bkt/big/{i:02}");
            store.inner.insert(&uri, line.repeat(1024)); // 1 MiB each: more than a channel holds
            uris.push(S3Uri::parse(&uri).unwrap());
        }
        let max_open = store.max_open.clone();
        let open = store.open.clone();
        let (bytes, stats) = stream_objects(Arc::new(store), uris, 3, 0usize, |n, _, r| {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf)?;
            *n += buf.len();
            std::thread::sleep(std::time::Duration::from_millis(5));
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!((bytes, stats.objects), (12 << 20, 12));
        let max = max_open.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (2..=3).contains(&max),
            "at most 3 objects open at once, and more than one: {max}"
        );
        assert_eq!(
            open.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "every body was released"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumer_errors_stop_the_stream() {
        let store = Arc::new(InMemoryStore::default());
        store.insert("s3://bkt/a", "x\n");
        store.insert("s3://bkt/b", "y\n");
        let uris = vec![
            S3Uri::parse("s3://bkt/a").unwrap(),
            S3Uri::parse("s3://bkt/b").unwrap(),
        ];
        let err = stream_objects(store, uris, 2, (), |_, _, _| Err(io::Error::other("boom")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("s3://bkt/a: boom"), "{err}");
    }
}
