//! The cross-shard router: which shard owns a key, and the message mesh between shards.
//!
//! Every shard holds a sender to every other shard (a glommio channel mesh). Messages are either
//! a batch of keyed commands from one connection (all of a pipeline's commands for that shard in
//! one message) or a job closure used by multi-shard commands and server-wide commands. Replies
//! come back on a oneshot channel, which is cheaper than a reply through the mesh.
//!
//! The router never executes anything itself and never blocks a thread; a full channel only
//! suspends the sending task.

use std::rc::Rc;
use std::sync::Arc;

use futures::future::LocalBoxFuture;

use bytes::BytesMut;
use glommio::channels::channel_mesh::Senders;

use super::slot::SlotMap;
use super::{ClientLabel, Shard};
use crate::protocol::parse::Args;

/// Work shipped to another shard as a closure. It runs on the target shard's thread.
pub type Job = Box<dyn FnOnce(&Shard) + Send>;

/// Work that may have to wait on the target shard (for a lock): the closure builds a task that
/// the target spawns on its executor.
pub type TaskJob = Box<dyn FnOnce(Rc<Shard>) -> LocalBoxFuture<'static, ()> + Send>;

/// A batch of keyed commands from one connection, executed in order on the target shard.
pub struct Batch {
    pub db: usize,
    pub resp3: bool,
    /// (command table index, arguments).
    pub cmds: Vec<(u16, Args)>,
    pub origin: Arc<ClientLabel>,
    pub reply: futures::channel::oneshot::Sender<Box<BatchReply>>,
    /// Where the replies are written: the connection's previous reply from this shard, emptied,
    /// so that steady traffic allocates no buffer on either side of the hop (boxed, so that
    /// the message and every slot of the mesh's channels stay small).
    pub room: Box<BatchReply>,
}

/// The replies of a batch, concatenated; `ends[i]` is where reply `i` ends in `buf`. It also
/// carries the batch's command vector back, with each command's argument vector emptied, for
/// the connection's parser and its next batch to that shard.
#[derive(Default)]
pub struct BatchReply {
    pub buf: BytesMut,
    pub ends: Vec<usize>,
    pub cmds: Vec<(u16, Args)>,
}

impl BatchReply {
    pub fn reply(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// Empties the reply for reuse as the next batch's `room`; None when a burst made it too
    /// big to keep (a connection holds one per shard it talks to).
    pub fn recycle(mut self: Box<Self>) -> Option<Box<BatchReply>> {
        const BUF_KEEP: usize = 1024;
        const CMDS_KEEP: usize = 32;
        if self.buf.capacity() > BUF_KEEP || self.cmds.capacity() > CMDS_KEEP {
            return None;
        }
        self.buf.clear();
        self.ends.clear();
        Some(self)
    }
}

pub enum ShardMsg {
    Batch(Batch),
    Job(Job),
    Task(TaskJob),
    /// Gives back a multi-shard transaction's locks on the target (`crate::tx::release_on`):
    /// the commonest job, sent without a boxed closure.
    Release(crate::tx::locks::TxId),
}

/// The target shard has stopped (only during shutdown).
#[derive(Debug, Clone, Copy)]
pub struct ShardGone;

pub struct Router {
    slots: Arc<SlotMap>,
    senders: Option<Senders<ShardMsg>>,
}

impl Router {
    pub fn new(slots: Arc<SlotMap>, senders: Option<Senders<ShardMsg>>) -> Router {
        Router { slots, senders }
    }

    /// The slot map (the AOF checks which keys of a unit are this shard's own).
    pub fn slots(&self) -> Arc<SlotMap> {
        self.slots.clone()
    }

    pub fn nshards(&self) -> usize {
        self.slots.shards()
    }

    #[inline]
    pub fn shard_of_key(&self, key: &[u8]) -> usize {
        self.slots.shard_of_key(key)
    }

    pub async fn send(&self, to: usize, msg: ShardMsg) -> Result<(), ShardGone> {
        match &self.senders {
            Some(s) => s.send_to(to, msg).await.map_err(|_| ShardGone),
            None => Err(ShardGone),
        }
    }

    /// Sends without waiting: `Err(Some(msg))` hands the message back when the channel is full,
    /// `Err(None)` means the target is gone. For callers that must not yield (a script in global
    /// mode parks its thread instead, see `crate::scripting`).
    pub fn try_send(&self, to: usize, msg: ShardMsg) -> Result<(), Option<ShardMsg>> {
        let Some(s) = &self.senders else {
            return Err(None);
        };
        match s.try_send_to(to, msg) {
            Ok(()) => Ok(()),
            Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(m))) => {
                Err(Some(m))
            }
            Err(_) => Err(None),
        }
    }

    /// Sends a batch and returns the receiver for its replies.
    pub async fn send_batch(
        &self,
        to: usize,
        db: usize,
        resp3: bool,
        cmds: Vec<(u16, Args)>,
        origin: Arc<ClientLabel>,
        room: Box<BatchReply>,
    ) -> Result<futures::channel::oneshot::Receiver<Box<BatchReply>>, ShardGone> {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.send(
            to,
            ShardMsg::Batch(Batch {
                db,
                resp3,
                cmds,
                origin,
                reply: tx,
                room,
            }),
        )
        .await?;
        Ok(rx)
    }

    pub fn close(&self) {
        if let Some(s) = &self.senders {
            s.close();
        }
    }
}

/// Keys of `args` according to a command's key positions (first, last, step), as COMMAND
/// GETKEYS reports them. Positions past the end of `args` yield nothing.
pub fn key_positions(
    first: i32,
    last: i32,
    step: i32,
    argc: usize,
) -> std::iter::StepBy<std::ops::Range<usize>> {
    let (first, step) = (first.max(0) as usize, step.max(1) as usize);
    let last = if last < 0 {
        argc as i64 + last as i64
    } else {
        last as i64
    };
    let end = if first == 0 {
        0
    } else {
        (last.max(0) as usize + 1).min(argc)
    };
    (first..end.max(first)).step_by(step)
}
