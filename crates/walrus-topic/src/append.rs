//! The write path of one topic: single appends and all-or-nothing batches into its blocks.
//!
//! Everything here runs under the topic's writer lock. An entry is encoded (with the claim of
//! how much of the topic was durable when it was written), written at the end of the active
//! block, and then published: readers see it only after its bytes are in the file. A batch is
//! written whole first, across as many new blocks as it needs, and published with one store.

use std::sync::Arc;

use walrus_alloc::Allocator;
use walrus_storage::{FrameHeader, Segment, WriteAt, encode_frame, frame_len};

use crate::{
    Error, Result,
    block::Block,
    claim::ClaimTracker,
    durability::Durability,
    format::{
        ENTRY_KIND, FLAG_BATCH, FLAG_BATCH_END, SEAL_BYTES, block_header_len, encode_claim,
        topic_tag,
    },
    log::{DurableMarks, indexed},
    seal::SealSummary,
    topic::Topic,
};

/// What a writer borrows from the engine.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteCtx<'e> {
    pub(crate) alloc: &'e Allocator,
    pub(crate) durability: &'e Durability,
    /// Prepares new blocks' pages off the hot path (`prepare.rs`).
    pub(crate) preparer: &'e crate::prepare::Preparer,
}

/// A topic's write side: the active block, where the next frame goes, the next sequence
/// number and the durability claims. Held under `Topic::writer`.
///
/// Invariants: every entry before `next_seq` is written and published; the active block is
/// the last block of the topic's chain; `write_offset` never exceeds the active extent.
#[derive(Debug)]
pub(crate) struct TopicWriter {
    /// The block being appended to, with its file handle cached for the hot path.
    pub(crate) active: Option<(Arc<Block>, Arc<dyn Segment>)>,
    /// Offset in the active extent where the next frame goes.
    pub(crate) write_offset: u64,
    /// Offset in the active extent up to which bytes have been written: entries, or the
    /// zeros a durable append writes ahead of itself ([`ZERO_AHEAD_BYTES`]).
    written_to: u64,
    /// Sequence number of the next entry.
    pub(crate) next_seq: u64,
    /// Reused encoding buffer, so appends do not allocate.
    scratch: Vec<u8>,
    /// What is known durable, for the claim each entry carries.
    claims: ClaimTracker,
    /// The active block's summary, for its seal record.
    summary: SealSummary,
    /// Which positions are durable, for `TopicLog` (`log/durable.rs`).
    pub(crate) marks: DurableMarks,
    /// Bytes of the extents the topic has taken (those it had at open, then every new one):
    /// new blocks grow with it ([`extent_request`]).
    grown: u64,
}

/// How far a durable append writes zeros ahead of itself when it reaches bytes never written.
///
/// Blocks are reserved with `fallocate`, so their space starts as unwritten extents: the
/// fdatasync after the first write into each page must also commit the conversion of that
/// range to written, a journal commit that rewriting written bytes does not need (on the test
/// machine 10.4k overwrite fdatasyncs/s against 6.6k for a file growing by 4 KiB each time).
/// Writing zeros ahead (what those bytes read as anyway) turns one conversion per page into
/// one per this many bytes. Only past the writer's own offset, in its own active block, below
/// its seal region: no other writer or reader touches those bytes.
const ZERO_AHEAD_BYTES: u64 = 64 * 1024;

/// The frames of a batch bound for one block.
struct Piece {
    block: Arc<Block>,
    segment: Arc<dyn Segment>,
    start: u64,
    bytes: Vec<u8>,
    /// A block allocated for this batch (given up again if the batch fails).
    fresh: bool,
    /// `(seq, offset)` of the piece's entries that go into the block's sparse index.
    points: Vec<(u64, u64)>,
    /// The block's summary once the piece is written.
    summary: SealSummary,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl TopicWriter {
    /// A writer whose first entry gets `next_seq`. A new topic has nothing before it; a
    /// recovered one was synced at open, so everything before it is durable. `grown`: the
    /// bytes of the topic's extents so far.
    pub(crate) fn new(next_seq: u64, grown: u64) -> Self {
        Self {
            active: None,
            write_offset: 0,
            written_to: 0,
            next_seq,
            scratch: Vec::new(),
            claims: ClaimTracker::new(next_seq),
            summary: SealSummary::default(),
            marks: DurableMarks::new(next_seq),
            grown,
        }
    }

    /// Queues the seal record of the active block (at a clean close: no more appends).
    pub(crate) fn seal_for_close(&self, ctx: WriteCtx<'_>) {
        if let Some((block, _)) = &self.active {
            let ticket = ctx.durability.issued();
            ctx.durability
                .seals
                .push(Arc::clone(block), &self.summary, ticket);
        }
    }

    /// Appends one entry and publishes it; returns the durability ticket that covers it.
    /// `durable`: the caller will wait for the entry to be durable (zeros are then written
    /// ahead of it, see [`ZERO_AHEAD_BYTES`]).
    pub(crate) fn append(
        &mut self,
        ctx: WriteCtx<'_>,
        topic: &Topic,
        data: &[u8],
        durable: bool,
    ) -> Result<u64> {
        // The entry takes `next_seq`; the one after it must exist too.
        if self.next_seq == u64::MAX {
            return Err(Error::SequenceExhausted(topic.name.clone()));
        }
        let needed = frame_len(data.len()) as u64;
        if self
            .active
            .as_ref()
            .is_none_or(|(b, _)| self.write_offset + needed > b.capacity())
        {
            self.rotate(ctx, topic, needed)?;
        }
        let durable_end = self.claimed_durable_end(ctx, self.next_seq);
        let (block, segment) = self.active.as_ref().expect("rotate leaves an active block");
        self.scratch.clear();
        let header = FrameHeader {
            kind: ENTRY_KIND,
            flags: block.tag,
            aux: encode_claim(self.next_seq, durable_end),
            seq: self.next_seq,
        };
        encode_frame(&mut self.scratch, &header, data);
        let end = self.write_offset + needed;
        if durable && end > self.written_to {
            let ahead = (end + ZERO_AHEAD_BYTES).min(block.capacity());
            self.scratch.resize((ahead - self.write_offset) as usize, 0);
            self.written_to = ahead;
        }
        segment.write_at(block.file_offset(self.write_offset), &self.scratch)?;
        block.extent.file().mark_dirty();
        if indexed(block.first_seq, self.next_seq) {
            block.offsets.record(self.next_seq, self.write_offset);
        }
        self.write_offset += needed;
        self.next_seq += 1;
        self.summary
            .wrote(self.write_offset, self.next_seq, durable_end, true);
        block.publish(self.write_offset);
        topic.positions.tail.publish(self.next_seq);
        let ticket = ctx.durability.ticket();
        self.claims.written(ticket, self.next_seq);
        let durable_ticket = ctx.durability.durable_ticket();
        self.marks.written(ticket, self.next_seq, durable_ticket);
        Ok(ticket)
    }

    /// Appends every entry of `batch` (not empty) or none, and publishes them at once;
    /// returns the durability ticket that covers them.
    pub(crate) fn append_batch(
        &mut self,
        ctx: WriteCtx<'_>,
        topic: &Topic,
        batch: &[&[u8]],
    ) -> Result<u64> {
        if self.next_seq.checked_add(batch.len() as u64).is_none() {
            return Err(Error::SequenceExhausted(topic.name.clone()));
        }
        let pieces = self.encode_batch(ctx, topic, batch)?;
        write_pieces(ctx, &pieces)?;
        for piece in &pieces {
            piece.block.offsets.extend(&piece.points);
        }
        publish_pieces(topic, &pieces);
        let last = pieces.last().expect("a non-empty batch has a piece");
        self.active = Some((Arc::clone(&last.block), Arc::clone(&last.segment)));
        self.write_offset = last.end();
        // Zeros written ahead by durable appends are in the old block if this one is new.
        self.written_to = if last.fresh {
            self.write_offset
        } else {
            self.written_to.max(self.write_offset)
        };
        self.next_seq += batch.len() as u64;
        topic.positions.tail.publish(self.next_seq);
        self.summary = last.summary;
        // Every piece but the last is a sealed block now; its data is durable once the
        // batch's ticket is.
        let ticket = ctx.durability.issued();
        for piece in &pieces[..pieces.len() - 1] {
            ctx.durability
                .seals
                .push(Arc::clone(&piece.block), &piece.summary, ticket);
        }
        let mut scratch = pieces
            .into_iter()
            .find(|p| !p.fresh)
            .map(|p| p.bytes)
            .unwrap_or_default();
        scratch.clear();
        self.scratch = scratch;
        let ticket = ctx.durability.ticket();
        self.claims.written(ticket, self.next_seq);
        let durable_ticket = ctx.durability.durable_ticket();
        self.marks.written(ticket, self.next_seq, durable_ticket);
        Ok(ticket)
    }

    /// Encodes the batch into pieces: the rest of the active block, then new blocks as
    /// needed (allocated here, not yet in the chain). Nothing is written yet.
    fn encode_batch(
        &mut self,
        ctx: WriteCtx<'_>,
        topic: &Topic,
        batch: &[&[u8]],
    ) -> Result<Vec<Piece>> {
        let durable_end = self.claimed_durable_end(ctx, self.next_seq);
        let mut pieces: Vec<Piece> = Vec::new();
        let mut current = self.active.clone().map(|(block, segment)| Piece {
            block,
            segment,
            start: self.write_offset,
            bytes: std::mem::take(&mut self.scratch),
            fresh: false,
            summary: self.summary,
            points: Vec::new(),
        });
        if let Some(piece) = current.as_mut() {
            piece.bytes.clear();
        }
        for (seq, (index, entry)) in (self.next_seq..).zip(batch.iter().enumerate()) {
            let needed = frame_len(entry.len()) as u64;
            let fits = current
                .as_ref()
                .is_some_and(|p| p.end() + needed <= p.block.capacity());
            if !fits {
                match new_block(ctx, topic, seq, needed, &mut self.grown) {
                    Ok((block, segment)) => {
                        let start = block.data_start;
                        let fresh = Piece {
                            block,
                            segment,
                            start,
                            bytes: Vec::new(),
                            fresh: true,
                            summary: SealSummary::empty(seq, start),
                            points: Vec::new(),
                        };
                        pieces.extend(current.replace(fresh));
                    }
                    Err(err) => {
                        pieces.extend(current);
                        abandon(&pieces);
                        return Err(err);
                    }
                }
            }
            let piece = current.as_mut().expect("a block was just ensured");
            let last = index + 1 == batch.len();
            let flags = piece.block.tag | FLAG_BATCH | if last { FLAG_BATCH_END } else { 0 };
            let header = FrameHeader {
                kind: ENTRY_KIND,
                flags,
                aux: encode_claim(seq, durable_end),
                seq,
            };
            if indexed(piece.block.first_seq, seq) {
                piece.points.push((seq, piece.end()));
            }
            encode_frame(&mut piece.bytes, &header, entry);
            let end = piece.end();
            piece.summary.wrote(end, seq + 1, durable_end, last);
        }
        pieces.extend(current);
        Ok(pieces)
    }

    /// The durable prefix the next entries of the topic claim.
    fn claimed_durable_end(&mut self, ctx: WriteCtx<'_>, next_seq: u64) -> u64 {
        // Mutant claim_overstated: claims every earlier entry durable, so recovery takes
        // crash holes for damage and keeps entries after them.
        if cfg!(walrus_mutant = "claim_overstated") {
            return next_seq;
        }
        self.claims.durable_end(ctx.durability.durable_ticket())
    }

    /// Seals the active block and starts a new one with room for `needed` bytes.
    fn rotate(&mut self, ctx: WriteCtx<'_>, topic: &Topic, needed: u64) -> Result<()> {
        let _span = tracing::debug_span!("walrus_rotate", topic = %topic.name).entered();
        let (block, segment) = new_block(ctx, topic, self.next_seq, needed, &mut self.grown)?;
        topic.chain.write().push_back(Arc::clone(&block));
        topic.positions.push(Arc::clone(&block));
        self.seal_active(ctx);
        self.summary = SealSummary::empty(self.next_seq, block.data_start);
        self.write_offset = block.data_start;
        self.written_to = block.data_start;
        self.active = Some((block, segment));
        Ok(())
    }

    /// Seals the active block, if any, and queues its seal record; the next append starts
    /// a new block.
    pub(crate) fn seal_active(&mut self, ctx: WriteCtx<'_>) {
        if let Some((old, _)) = self.active.take() {
            old.seal();
            let ticket = ctx.durability.issued();
            ctx.durability.seals.push(old, &self.summary, ticket);
        }
    }

    /// After a truncation at `cut` (whose blocks are sealed, and everything before `cut`
    /// durable): the next append gets `cut`, in a new block.
    pub(crate) fn truncated(&mut self, cut: u64) {
        self.active = None;
        self.write_offset = 0;
        self.next_seq = cut;
        self.summary = SealSummary::default();
        self.claims = ClaimTracker::new(cut);
        self.marks = DurableMarks::new(cut);
    }

    /// Makes the next append get `next_seq` (past the end: a purge past it, whose cursor is
    /// persisted already), in a new block. The positions skipped hold no entry.
    pub(crate) fn skip_to(&mut self, ctx: WriteCtx<'_>, topic: &Topic, next_seq: u64) {
        debug_assert!(next_seq >= self.next_seq);
        self.seal_active(ctx);
        self.next_seq = next_seq;
        // Everything before is durable once every write issued so far is.
        let (issued, durable) = (ctx.durability.issued(), ctx.durability.durable_ticket());
        self.marks.written(issued, next_seq, durable);
        topic.positions.tail.publish(next_seq);
    }
}

/// The bytes to ask the allocator for a new block of a topic whose extents so far took
/// `grown` bytes, that must hold a header of `data_start` bytes and frames of `needed`.
///
/// Blocks grow with their topic: half of what it has taken so far, at most one block. A new
/// topic starts with one small unit (4 KiB), so 10,000 topics of a few entries do not reserve
/// 10,000 blocks, and the space a topic reserves but has not filled stays under about half of
/// what it holds. A busy topic reaches whole blocks once it has taken twice the largest small
/// extent (`Allocator::small_extent_max`: about 4 MiB with the defaults).
fn extent_request(alloc: &Allocator, grown: u64, data_start: u64, needed: u64) -> u64 {
    // Room for the frames and, at the extent's end, its seal record.
    let must = data_start + needed + SEAL_BYTES;
    must.max((grown / 2).min(alloc.config().block_bytes))
}

/// Allocates an extent for `topic` and writes its block header (not yet in any chain).
/// `grown` counts the topic's extent bytes ([`extent_request`]).
fn new_block(
    ctx: WriteCtx<'_>,
    topic: &Topic,
    first_seq: u64,
    needed: u64,
    grown: &mut u64,
) -> Result<(Arc<Block>, Arc<dyn Segment>)> {
    let data_start = block_header_len(&topic.name);
    let request = extent_request(ctx.alloc, *grown, data_start, needed);
    let must = data_start + needed + SEAL_BYTES;
    let extent = ctx.alloc.allocate_between(topic.lane, must, request)?;
    *grown += extent.len();
    let Some(segment) = extent.file().segment() else {
        extent.abandon();
        return Err(Error::InvalidInput(
            "segment file deleted while allocating".into(),
        ));
    };
    let header = crate::block::header_frame(&topic.name, first_seq, extent.block_count(), 0);
    if let Err(err) = segment.write_at(extent.offset(), &header) {
        extent.abandon();
        return Err(err.into());
    }
    extent.file().mark_dirty();
    ctx.preparer.request(
        &segment,
        extent.offset() + data_start,
        extent.len() - data_start,
    );
    let tag = topic_tag(&topic.name);
    let block = Arc::new(Block::new(
        extent, first_seq, data_start, tag, data_start, false,
    ));
    Ok((block, segment))
}

/// Gives up the blocks allocated for a batch that failed.
fn abandon(pieces: &[Piece]) {
    for piece in pieces.iter().filter(|p| p.fresh) {
        piece.block.extent.abandon();
    }
}

/// Writes every piece. If one fails, nothing was published (readers never saw any of it) and
/// the writer is unchanged; the pieces written are zeroed again, or a shorter append over
/// them would leave valid frames of a batch that never happened behind it.
///
/// Consecutive pieces in one file go down in one `write_batch` (one io_uring submission when
/// the instance has a ring, else one `pwrite` each).
fn write_pieces(ctx: WriteCtx<'_>, pieces: &[Piece]) -> Result<()> {
    let mut first = 0;
    while first < pieces.len() {
        let segment = &pieces[first].segment;
        let end = first
            + pieces[first..]
                .iter()
                .take_while(|p| Arc::ptr_eq(&p.segment, segment))
                .count();
        let writes: Vec<WriteAt<'_>> = pieces[first..end]
            .iter()
            .map(|p| WriteAt {
                offset: p.block.file_offset(p.start),
                buf: &p.bytes,
            })
            .collect();
        if let Err(err) = segment.write_batch(&writes) {
            let mut undone = Ok(());
            for done in &pieces[..end] {
                let zeros = vec![0u8; done.bytes.len()];
                let at = done.block.file_offset(done.start);
                undone = undone.and(done.segment.write_at(at, &zeros));
            }
            abandon(pieces);
            if let Err(undo) = undone {
                // Frames of the failed batch may stay on disk: refuse further appends until
                // a reopen (whose recovery cuts the partial batch) rather than write after
                // them.
                ctx.durability
                    .poison(format!("failed batch write ({err}) not undone: {undo}"));
            }
            return Err(err.into());
        }
        for piece in &pieces[first..end] {
            piece.block.extent.file().mark_dirty();
        }
        first = end;
    }
    Ok(())
}

/// Publishes a written batch. Fresh blocks join the chain already published (all but the
/// last sealed), in one critical section; no reader can reach them before the old active
/// block is sealed. The old block then gets its final end and seal in one store, which makes
/// the whole batch visible at once.
fn publish_pieces(topic: &Topic, pieces: &[Piece]) {
    let count = pieces.len();
    {
        let mut chain = topic.chain.write();
        for (index, piece) in pieces.iter().enumerate().filter(|(_, p)| p.fresh) {
            if index + 1 < count {
                piece.block.publish_sealed(piece.end());
            } else {
                piece.block.publish(piece.end());
            }
            chain.push_back(Arc::clone(&piece.block));
        }
    }
    for piece in pieces.iter().filter(|p| p.fresh) {
        topic.positions.push(Arc::clone(&piece.block));
    }
    if let Some(first) = pieces.first().filter(|p| !p.fresh) {
        if count > 1 {
            first.block.publish_sealed(first.end());
        } else {
            first.block.publish(first.end());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use walrus_alloc::{AllocConfig, Allocator};
    use walrus_storage::MemStorage;

    use super::extent_request;
    use crate::format::SEAL_BYTES;

    #[test]
    fn extents_grow_with_the_topic_up_to_one_block() {
        let storage = Arc::new(MemStorage::new());
        let alloc = Allocator::new(storage, AllocConfig::default()).unwrap();
        let block = AllocConfig::default().block_bytes;
        // A new topic asks for what the entry needs: one small unit.
        assert_eq!(extent_request(&alloc, 0, 48, 1056), 48 + 1056 + SEAL_BYTES);
        // Then half of what it has taken so far...
        assert_eq!(extent_request(&alloc, 12 << 10, 48, 1056), 6 << 10);
        // ...never less than the entry needs, and never more than a block for growth alone.
        assert_eq!(
            extent_request(&alloc, 12 << 10, 48, 64 << 10),
            48 + (64 << 10) + SEAL_BYTES
        );
        assert_eq!(extent_request(&alloc, 1 << 40, 48, 1056), block);
        assert_eq!(
            extent_request(&alloc, 1 << 40, 48, 3 * block),
            48 + 3 * block + SEAL_BYTES
        );
    }
}
