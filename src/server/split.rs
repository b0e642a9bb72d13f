//! Splits a connection's socket into a read half and a write half for the one shard thread
//! that owns it.
//!
//! A connection reads and writes concurrently (a subscriber is sent messages while its next
//! command is awaited), so it needs two handles on one socket. `futures::io::split` gives that
//! with a `BiLock`, two atomic read-modify-writes per poll, which showed up at 4.5% of a shard's
//! user time at P=1. Here both halves live on one thread, so a `RefCell` borrowed only for the
//! length of one `poll_*` call is enough: neither half can be polled while the other is.
//!
//! Never hold a borrow across an await or hand a half to another thread (both are `!Send`).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

/// The reading end of a split stream.
pub struct ReadHalf<S>(Rc<RefCell<S>>);

/// The writing end of a split stream.
pub struct WriteHalf<S>(Rc<RefCell<S>>);

/// Splits `stream` into halves that can be polled from two tasks on the same thread.
pub fn split<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> (ReadHalf<S>, WriteHalf<S>) {
    let shared = Rc::new(RefCell::new(stream));
    (ReadHalf(shared.clone()), WriteHalf(shared))
}

impl<S> ReadHalf<S> {
    /// The stream both halves share.
    pub fn shared(&self) -> Rc<RefCell<S>> {
        self.0.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::{AsyncReadExt, AsyncWriteExt, Cursor};

    #[test]
    fn halves_share_one_stream() {
        futures_lite::future::block_on(async {
            let (mut r, mut w) = split(Cursor::new(b"hello".to_vec()));
            let mut buf = [0u8; 5];
            r.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
            // The write lands at the shared cursor's position, after what was read.
            w.write_all(b" world").await.unwrap();
            w.flush().await.unwrap();
            drop(r);
            let cursor = Rc::try_unwrap(w.0).expect("last handle").into_inner();
            assert_eq!(cursor.into_inner(), b"hello world");
        });
    }
}
