//! The write path: single appends and all-or-nothing batches.

use std::sync::{Arc, atomic::Ordering};

use walrus_storage::{FrameHeader, Segment, encode_frame, frame_len};

use crate::{
    Engine, Error, FsyncSchedule, Result,
    block::Block,
    claim::ClaimTracker,
    format::{
        BATCH_BYTES_MAX, BATCH_ENTRIES_MAX, BLOCK_HEADER_KIND, ENTRY_BYTES_MAX, ENTRY_KIND,
        FLAG_BATCH, FLAG_BATCH_END, block_header_len, encode_claim, topic_tag,
    },
    topic::{Topic, WriterState},
};

/// Resets the topic's batch flag on every exit path.
struct BatchGuard<'a>(&'a Topic);

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        self.0.batch_active.store(false, Ordering::Release);
    }
}

// The batch-size error names the limit as walrus-rust 0.2.0 does ("10GB limit").
const _: () = assert!(BATCH_BYTES_MAX == 10 << 30);

fn check_entry_len(len: usize) -> Result<()> {
    if len > ENTRY_BYTES_MAX {
        return Err(Error::InvalidInput(format!(
            "entry is {len} bytes, the limit is {ENTRY_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

impl Engine {
    /// Appends one entry to `topic`; with `SyncEach` returns only once it is durable.
    pub fn append(&self, topic: &str, data: &[u8], schedule: FsyncSchedule) -> Result<()> {
        self.durability
            .check(self.append_inner(topic, data, schedule))
    }

    fn append_inner(&self, topic: &str, data: &[u8], schedule: FsyncSchedule) -> Result<()> {
        check_entry_len(data.len())?;
        self.durability.check_poisoned()?;
        let topic = self.topic_or_create(topic)?;
        if !self.config.wait_for_batches && topic.batch_active.load(Ordering::Acquire) {
            return Err(Error::WouldBlock("batch write in progress for this topic"));
        }
        let ticket = {
            let mut writer = topic.writer.lock();
            // The entry takes `next_seq`; the one after it must exist too.
            if writer.next_seq == u64::MAX {
                return Err(Error::SequenceExhausted(topic.name.clone()));
            }
            let needed = frame_len(data.len()) as u64;
            if writer
                .active
                .as_ref()
                .is_none_or(|(b, _)| writer.write_offset + needed > b.extent.len())
            {
                self.rotate(&topic, &mut writer, needed)?;
            }
            let state = &mut *writer;
            let (block, segment) = state
                .active
                .as_ref()
                .expect("rotate leaves an active block");
            state.scratch.clear();
            let durable_end = self.claimed_durable_end(&mut state.claims, state.next_seq);
            let header = FrameHeader {
                kind: ENTRY_KIND,
                flags: block.tag,
                aux: encode_claim(state.next_seq, durable_end),
                seq: state.next_seq,
            };
            encode_frame(&mut state.scratch, &header, data);
            segment.write_at(block.file_offset(state.write_offset), &state.scratch)?;
            block.extent.file().mark_dirty();
            state.write_offset += needed;
            state.next_seq += 1;
            block.publish(state.write_offset);
            let ticket = self.durability.ticket();
            state.claims.written(ticket, state.next_seq);
            ticket
        };
        self.counters.appended(1, data.len() as u64);
        // Mutant ack_before_fsync: acknowledges SyncEach appends before they are durable.
        if matches!(schedule, FsyncSchedule::SyncEach) && !cfg!(walrus_mutant = "ack_before_fsync")
        {
            self.durability.wait_durable(ticket, &self.alloc)?;
        }
        Ok(())
    }

    /// The durable prefix the next entries of the writer's topic claim.
    fn claimed_durable_end(&self, claims: &mut ClaimTracker, next_seq: u64) -> u64 {
        // Mutant claim_overstated: claims every earlier entry durable, so recovery takes
        // crash holes for damage and keeps entries after them.
        if cfg!(walrus_mutant = "claim_overstated") {
            return next_seq;
        }
        claims.durable_end(self.durability.durable_ticket())
    }

    /// Seals the writer's active block and starts a new one with room for `needed` bytes.
    fn rotate(&self, topic: &Topic, writer: &mut WriterState, needed: u64) -> Result<()> {
        let _span = tracing::debug_span!("walrus_rotate", topic = %topic.name).entered();
        let (block, segment) = self.new_block(topic, writer.next_seq, needed)?;
        topic.chain.write().push_back(Arc::clone(&block));
        if let Some((old, _)) = writer.active.take() {
            old.seal();
        }
        writer.write_offset = block.data_start;
        writer.active = Some((block, segment));
        Ok(())
    }

    /// Allocates an extent for `topic` and writes its block header (not yet in any chain).
    fn new_block(
        &self,
        topic: &Topic,
        first_seq: u64,
        needed: u64,
    ) -> Result<(Arc<Block>, Arc<dyn Segment>)> {
        let data_start = block_header_len(&topic.name);
        let extent = self.alloc.allocate(data_start + needed)?;
        let Some(segment) = extent.file().segment() else {
            extent.abandon();
            return Err(Error::InvalidInput(
                "segment file deleted while allocating".into(),
            ));
        };
        let mut header = Vec::with_capacity(data_start as usize);
        let frame = FrameHeader {
            kind: BLOCK_HEADER_KIND,
            flags: 0,
            aux: extent.block_count(),
            seq: first_seq,
        };
        encode_frame(&mut header, &frame, topic.name.as_bytes());
        if let Err(err) = segment.write_at(extent.offset(), &header) {
            extent.abandon();
            return Err(err.into());
        }
        extent.file().mark_dirty();
        let block = Arc::new(Block::new(
            extent,
            first_seq,
            data_start,
            topic_tag(&topic.name),
            data_start,
            false,
        ));
        Ok((block, segment))
    }

    /// Appends all of `batch` to `topic` or none of it, in process and across a crash.
    pub fn batch_append(
        &self,
        topic: &str,
        batch: &[&[u8]],
        schedule: FsyncSchedule,
    ) -> Result<()> {
        self.durability
            .check(self.batch_append_inner(topic, batch, schedule))
    }

    fn batch_append_inner(
        &self,
        topic: &str,
        batch: &[&[u8]],
        schedule: FsyncSchedule,
    ) -> Result<()> {
        if batch.len() > BATCH_ENTRIES_MAX {
            return Err(Error::InvalidInput(format!(
                "batch of {} entries exceeds the {BATCH_ENTRIES_MAX} entry limit",
                batch.len()
            )));
        }
        let mut total = 0u64;
        for entry in batch {
            check_entry_len(entry.len())?;
            total += frame_len(entry.len()) as u64;
        }
        if total > BATCH_BYTES_MAX {
            return Err(Error::InvalidInput(format!(
                "batch of {total} bytes (with entry headers) exceeds the 10GB limit \
                 ({BATCH_BYTES_MAX} bytes)"
            )));
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.durability.check_poisoned()?;
        let topic = self.topic_or_create(topic)?;
        if topic.batch_active.swap(true, Ordering::AcqRel) && !self.config.wait_for_batches {
            return Err(Error::WouldBlock("another batch write already in progress"));
        }
        let guard = if self.config.wait_for_batches {
            None
        } else {
            Some(BatchGuard(&topic))
        };
        let ticket = {
            let mut writer = topic.writer.lock();
            self.write_batch(&topic, &mut writer, batch)?;
            let ticket = self.durability.ticket();
            let seq_end = writer.next_seq;
            writer.claims.written(ticket, seq_end);
            ticket
        };
        drop(guard);
        self.counters.appended(
            batch.len() as u64,
            batch.iter().map(|e| e.len() as u64).sum(),
        );
        // Mutant ack_before_fsync: acknowledges SyncEach appends before they are durable.
        if matches!(schedule, FsyncSchedule::SyncEach) && !cfg!(walrus_mutant = "ack_before_fsync")
        {
            self.durability.wait_durable(ticket, &self.alloc)?;
        }
        Ok(())
    }

    fn write_batch(&self, topic: &Topic, writer: &mut WriterState, batch: &[&[u8]]) -> Result<()> {
        struct Piece {
            block: Arc<Block>,
            segment: Arc<dyn Segment>,
            start: u64,
            bytes: Vec<u8>,
            fresh: bool,
        }
        if writer.next_seq.checked_add(batch.len() as u64).is_none() {
            return Err(Error::SequenceExhausted(topic.name.clone()));
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut seq = writer.next_seq;
        let durable_end = self.claimed_durable_end(&mut writer.claims, seq);
        let mut current = writer.active.clone().map(|(block, segment)| Piece {
            block,
            segment,
            start: writer.write_offset,
            bytes: std::mem::take(&mut writer.scratch),
            fresh: false,
        });
        if let Some(piece) = current.as_mut() {
            piece.bytes.clear();
        }
        let abandon = |pieces: &[Piece], current: Option<Piece>| {
            for piece in pieces.iter().chain(current.as_ref()).filter(|p| p.fresh) {
                piece.block.extent.abandon();
            }
        };
        for (index, entry) in batch.iter().enumerate() {
            let needed = frame_len(entry.len()) as u64;
            let fits = current
                .as_ref()
                .is_some_and(|p| p.start + p.bytes.len() as u64 + needed <= p.block.extent.len());
            if !fits {
                match self.new_block(topic, seq, needed) {
                    Ok((block, segment)) => {
                        let start = block.data_start;
                        pieces.extend(current.replace(Piece {
                            block,
                            segment,
                            start,
                            bytes: Vec::new(),
                            fresh: true,
                        }));
                    }
                    Err(err) => {
                        abandon(&pieces, current);
                        return Err(err);
                    }
                }
            }
            let piece = current.as_mut().expect("a block was just ensured");
            let last = index + 1 == batch.len();
            let flags = piece.block.tag | FLAG_BATCH | if last { FLAG_BATCH_END } else { 0 };
            encode_frame(
                &mut piece.bytes,
                &FrameHeader {
                    kind: ENTRY_KIND,
                    flags,
                    aux: encode_claim(seq, durable_end),
                    seq,
                },
                entry,
            );
            seq += 1;
        }
        pieces.extend(current);
        for (written, piece) in pieces.iter().enumerate() {
            if let Err(err) = piece
                .segment
                .write_at(piece.block.file_offset(piece.start), &piece.bytes)
            {
                // Nothing was published, so readers never saw any of it, and the writer state
                // is unchanged. The failed write may still have stored whole frames of the
                // batch: zero it with the pieces before it, or a shorter append over them
                // would leave valid frames of a batch that never happened behind it.
                let mut undone = Ok(());
                for done in &pieces[..=written] {
                    let zeros = vec![0u8; done.bytes.len()];
                    undone = undone.and(
                        done.segment
                            .write_at(done.block.file_offset(done.start), &zeros),
                    );
                }
                abandon(&pieces, None);
                if let Err(undo) = undone {
                    // Frames of the failed batch may stay on disk: refuse further appends
                    // until a reopen (whose recovery cuts the partial batch) rather than
                    // write after them.
                    self.durability
                        .poison(format!("failed batch write ({err}) not undone: {undo}"));
                }
                return Err(err.into());
            }
            piece.block.extent.file().mark_dirty();
        }
        // Publish. Fresh blocks join the chain already published (all but the last sealed),
        // in one critical section; no reader can reach them before the old active block is
        // sealed. The old block then gets its final end and seal in one store, which makes
        // the whole batch visible at once.
        let count = pieces.len();
        {
            let mut chain = topic.chain.write();
            for (index, piece) in pieces.iter().enumerate().filter(|(_, p)| p.fresh) {
                let end = piece.start + piece.bytes.len() as u64;
                if index + 1 < count {
                    piece.block.publish_sealed(end);
                } else {
                    piece.block.publish(end);
                }
                chain.push_back(Arc::clone(&piece.block));
            }
        }
        if let Some(first) = pieces.first().filter(|p| !p.fresh) {
            let end = first.start + first.bytes.len() as u64;
            if count > 1 {
                first.block.publish_sealed(end);
            } else {
                first.block.publish(end);
            }
        }
        let last = pieces.last().expect("a non-empty batch has a piece");
        let new_offset = last.start + last.bytes.len() as u64;
        let new_active = (Arc::clone(&last.block), Arc::clone(&last.segment));
        let mut scratch = pieces
            .into_iter()
            .find(|p| !p.fresh)
            .map(|p| p.bytes)
            .unwrap_or_default();
        scratch.clear();
        writer.scratch = scratch;
        writer.active = Some(new_active);
        writer.write_offset = new_offset;
        writer.next_seq = seq;
        Ok(())
    }
}
