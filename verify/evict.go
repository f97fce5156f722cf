package verify

import (
	"bufio"
	"math"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"unsafe"

	"github.com/keyward/keyward"
)

// Eviction of positive cache entries: S3-FIFO (Yang et al., "FIFO queues
// are all you need for cache eviction", SOSP 2023), per shard. A key cached
// after a miss enters the small queue; one verified again before it leaves
// that queue moves to the main queue, the others are evicted and remembered
// (by slot) in the ghost, and a key that misses again while its
// slot is there enters the main queue at once. The main queue is a
// CLOCK over entries with a two-bit use count. Under skewed traffic the keys
// used once (scans, a flood of made-up keys that exist) pass through small
// and never push the hot keys out; a hit costs one atomic load (and a store
// while the count is below its cap) on a line the hit reads anyway.

// smallShare is the share of a shard's bytes its small queue may hold
// before eviction takes from it rather than from main.
const smallShare = 10 // per cent

// maxFreq caps the use count of an entry (two bits, as in S3-FIFO).
const maxFreq = 3

// minDefaultMaxBytes is the least DefaultMaxBytes returns.
const minDefaultMaxBytes = 16 << 20

// DefaultMaxBytes returns the default of Config.MaxBytes: a quarter of the
// memory available to the process, which is the Go memory limit (GOMEMLIMIT
// or debug.SetMemoryLimit) when one is set, else the cgroup's memory limit
// (a container's), else the machine's memory; 1 GiB if none can be read, and
// at least 16 MiB.
// The cache's accounting is an estimate of the heap it holds, which the
// garbage collector may let grow to about twice its live size without a
// memory limit: a quarter keeps the worst case at half of the memory.
func DefaultMaxBytes() int64 {
	avail := debug.SetMemoryLimit(-1)
	if avail == math.MaxInt64 {
		avail = min(cgroupMemoryMax(), memTotal())
	}
	if avail <= 0 || avail == math.MaxInt64 {
		return 1 << 30
	}
	return max(minDefaultMaxBytes, avail/4)
}

// cgroupMemoryMax returns the memory limit of the process's cgroup (v2,
// then v1), or math.MaxInt64 if it has none or it cannot be read.
func cgroupMemoryMax() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return math.MaxInt64
}

// memTotal returns MemTotal of /proc/meminfo, or math.MaxInt64.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return math.MaxInt64
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(rest, "kB")), 10, 64)
			if err != nil || kb <= 0 {
				return math.MaxInt64
			}
			return kb << 10
		}
	}
	return math.MaxInt64
}

// entryOverhead is what a cached key costs beyond its extra: the entry
// (allocated in its size class, the ids in it), its place in the shard's map (an
// 8-byte slot and a pointer, at the map's load factor), its item in an
// eviction queue (a slot, with the ring's slack) and a ghost slot.
// bench/cachemem checks the sum against the heap a filled cache holds.
var entryOverhead = int64(roundAlloc(int(unsafe.Sizeof(entry{})))) + 24 + 16 + 16

// entryBytes estimates the heap that caching en costs, for Config.MaxBytes.
// Interned permission lists and roles cost nothing per entry.
func entryBytes(en *entry) int64 {
	n := entryOverhead
	if x := en.extra; x != nil {
		n += int64(roundAlloc(int(unsafe.Sizeof(*x))) + roundAlloc(len(x.meta)) + roundAlloc(len(x.meterID)) + roundAlloc(len(x.bucket)) + roundAlloc(len(x.environment)) +
			roundAlloc(len(x.ipAllow)*int(unsafe.Sizeof(netip.Prefix{}))))
		for _, l := range [...][]keyward.RateLimit{x.rateLimits, x.accountRateLimits} {
			n += int64(roundAlloc(len(l) * int(unsafe.Sizeof(keyward.RateLimit{}))))
			for _, r := range l {
				n += int64(roundAlloc(len(r.Name)))
			}
		}
		for _, s := range [...]*keyward.Sealed{x.secretMeta, x.accountSecretMeta} {
			if s != nil {
				n += int64(roundAlloc(int(unsafe.Sizeof(*s))) + roundAlloc(len(s.Data)))
			}
		}
		if x.credits != nil {
			n += int64(roundAlloc(int(unsafe.Sizeof(*x.credits))))
		}
		if x.under != nil {
			n += int64(roundAlloc(len(x.under)))
		}
		if x.longIDs != nil {
			n += int64(roundAlloc(int(unsafe.Sizeof(*x.longIDs))))
			for _, id := range x.longIDs {
				n += int64(roundAlloc(len(id)))
			}
		}
	}
	return n
}

// roundAlloc rounds n up to the 16 bytes the allocator rounds small objects
// to (at least; larger size classes are coarser).
func roundAlloc(n int) int { return (n + 15) &^ 15 }

// touch records a hit on en for eviction.
func (en *entry) touch() {
	if f := en.freq.Load(); f < maxFreq {
		en.freq.Store(f + 1)
	}
}

// insertLocked adds en as the entry of slot, which s (locked) does not
// hold, then evicts as needed.
func (c *cache) insertLocked(s *shard, slot uint64, en *entry) {
	en.inMain = s.ghost.has(slot)
	if en.inMain {
		s.main.push(slot)
	} else {
		s.small.push(slot)
	}
	s.pos[slot] = en
	c.account(s, en, 1)
	c.evictLocked(s)
}

// replaceLocked makes en the entry of slot in s (locked) in place of old,
// keeping old's place in the queues and its use count.
func (c *cache) replaceLocked(s *shard, slot uint64, old, en *entry) {
	en.inMain = old.inMain
	en.freq.Store(old.freq.Load())
	c.account(s, old, -1)
	s.pos[slot] = en
	c.account(s, en, 1)
	c.evictLocked(s)
}

// removeLocked drops the entry of slot, if any, from s (locked). Its queue
// item stays, to be skipped.
func (c *cache) removeLocked(s *shard, slot uint64) {
	if en := s.pos[slot]; en != nil {
		delete(s.pos, slot)
		c.account(s, en, -1)
	}
}

// removeHashLocked drops the entry of h, if any, from s (locked); an entry
// of another hash in the same slot stays.
func (c *cache) removeHashLocked(s *shard, h keyward.KeyHash) {
	if s.get(h) != nil {
		c.removeLocked(s, slotOf(h))
	}
}

// clearLocked drops every positive entry of s (locked).
func (c *cache) clearLocked(s *shard) {
	c.bytes.Add(-s.bytes)
	c.entries.Add(-int64(len(s.pos)))
	clear(s.pos)
	s.small, s.main, s.ghost = fifo{}, fifo{}, ghost{}
	s.bytes, s.smallBytes = 0, 0
}

// account adds (sign 1) or removes (sign -1) en to the byte counts of s.
func (c *cache) account(s *shard, en *entry, sign int64) {
	n := sign * entryBytes(en)
	s.bytes += n
	if !en.inMain {
		s.smallBytes += n
	}
	c.bytes.Add(n)
	c.entries.Add(sign)
}

// evictLocked evicts entries of s (locked) until it holds at most its share
// of MaxBytes, or one entry.
func (c *cache) evictLocked(s *shard) {
	for s.bytes > c.shardMax && len(s.pos) > 1 {
		if s.smallBytes > c.shardMax*smallShare/100 || s.main.len() == 0 {
			c.evictSmall(s)
		} else {
			c.evictMain(s)
		}
	}
	s.compact()
}

// evictSmall takes items off the small queue of s until one is evicted:
// entries used again since they were queued move to main instead.
func (c *cache) evictSmall(s *shard) {
	for s.small.len() > 0 {
		slot := s.small.pop()
		en := s.pos[slot]
		if en == nil || en.inMain {
			continue
		}
		if en.freq.Load() > 1 {
			n := entryBytes(en)
			s.smallBytes -= n
			en.inMain = true
			en.freq.Store(0)
			s.main.push(slot)
			continue
		}
		c.removeLocked(s, slot)
		s.ghost.add(slot, len(s.pos)+1)
		c.evictions.Add(1)
		return
	}
	// Nothing left in small: the rest is in main.
	if s.main.len() > 0 {
		c.evictMain(s)
	}
}

// evictMain takes items off the main queue of s until one is evicted:
// entries used since they were last queued go round again with their use
// count decremented.
func (c *cache) evictMain(s *shard) {
	for s.main.len() > 0 {
		slot := s.main.pop()
		en := s.pos[slot]
		if en == nil || !en.inMain {
			continue
		}
		if f := en.freq.Load(); f > 0 {
			en.freq.Store(f - 1)
			s.main.push(slot)
			continue
		}
		c.removeLocked(s, slot)
		c.evictions.Add(1)
		return
	}
}

// compact drops from the queues of s (locked) the items of entries that
// left it or moved, once they outnumber the entries, so the queues stay
// within a small multiple of the entries.
func (s *shard) compact() {
	if s.small.len()+s.main.len() <= 2*len(s.pos)+16 {
		return
	}
	seen := make(map[uint64]struct{}, len(s.pos))
	keep := func(q *fifo, inMain bool) {
		var out fifo
		for q.len() > 0 {
			slot := q.pop()
			if en := s.pos[slot]; en != nil && en.inMain == inMain {
				if _, dup := seen[slot]; !dup {
					seen[slot] = struct{}{}
					out.push(slot)
				}
			}
		}
		*q = out
	}
	keep(&s.small, false)
	keep(&s.main, true)
}

// fifo is a queue of slots in a ring buffer that grows by doubling.
type fifo struct {
	buf        []uint64
	head, size int
}

func (q *fifo) len() int { return q.size }

func (q *fifo) push(slot uint64) {
	if q.size == len(q.buf) {
		buf := make([]uint64, max(8, 2*len(q.buf)))
		n := copy(buf, q.buf[q.head:])
		copy(buf[n:], q.buf[:q.head])
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = slot
	q.size++
}

func (q *fifo) pop() uint64 {
	slot := q.buf[q.head]
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if q.size == 0 && len(q.buf) > 64 {
		*q = fifo{} // give back the memory of a burst
	}
	return slot
}

// ghost remembers the slots of the entries last evicted from a shard's
// small queue, at most as many as the shard holds entries.
type ghost struct {
	ring []uint64
	head int
	set  map[uint64]int32 // slot -> items in ring
}

// add remembers fp, forgetting the oldest slots beyond limit.
func (g *ghost) add(fp uint64, limit int) {
	if g.set == nil {
		g.set = make(map[uint64]int32)
	}
	for len(g.ring)-g.head >= limit && g.head < len(g.ring) {
		g.forget(g.ring[g.head])
		g.head++
	}
	if g.head > len(g.ring)/2 {
		g.ring = append(g.ring[:0], g.ring[g.head:]...)
		g.head = 0
	}
	g.ring = append(g.ring, fp)
	g.set[fp]++
}

// has reports whether fp is remembered.
func (g *ghost) has(fp uint64) bool { return g.set[fp] > 0 }

func (g *ghost) forget(fp uint64) {
	if n := g.set[fp]; n <= 1 {
		delete(g.set, fp)
	} else {
		g.set[fp] = n - 1
	}
}
