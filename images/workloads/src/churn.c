/*
 * churn SEED N: the differential test program. A fixed-seed mix of N operations on up to 12
 * anonymous mappings: map, unmap, touch (write new values), mprotect read-only/read-write,
 * zap (a page range replaced with fresh zero pages by mmap(MAP_FIXED)), verify-and-checksum,
 * fork and reap.
 * Every page's expected contents are tracked outside the mappings, so every read is checked.
 * Forked children (up to 3 alive at once, while the parent keeps changing its own copy) run
 * their own fixed-seed operations on their copy-on-write view and report a checksum and an error
 * count over a pipe; the parent checks afterwards that the children's writes never reached it.
 *
 * The final checksum depends only on SEED and N; any correct MMU gives the same one. A wrong
 * translation, a lost copy-on-write, a stale TLB entry after munmap/mprotect/zap shows up as
 * errors=K > 0 (exit status 1) or as a different checksum.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench.h"

#define SLOTS 12
#define MAX_PAGES 32
#define MAX_KIDS 3
#define CHILD_OPS 24

struct slot {
  unsigned char *base; /* NULL when free */
  uint32_t pages;
  int writable;
  uint64_t vals[MAX_PAGES]; /* expected word of each page (0 when never written or zapped) */
};

struct kid {
  pid_t pid;
  int fd; /* read end of its report pipe */
};

static struct slot slots[SLOTS];
static struct kid kids[MAX_KIDS];
static int nkids;
static size_t page;
static uint64_t errors;
static const char *who = "churn";

/* The word of page p that carries its value, and a word that is never written (must be 0). */
static size_t value_index(uint32_t p) { return (p * 5) % 64; }
static size_t zero_index(uint32_t p) { return page / sizeof(uint64_t) - 1 - (p * 3) % 64; }

static uint64_t *word(struct slot *s, uint32_t p, size_t index) {
  return (uint64_t *)(s->base + (size_t)p * page) + index;
}

static void mismatch(const char *what, int slot, uint32_t p, uint64_t got, uint64_t want) {
  if (errors++ < 8) {
    bench_fdprintf(2, "%s: %s mismatch in slot %d page %u: got %016llx, expected %016llx\n", who,
                   what, slot, p, (unsigned long long)got, (unsigned long long)want);
  }
}

static uint64_t verify(int i, uint64_t sum) {
  struct slot *s = &slots[i];
  for (uint32_t p = 0; p < s->pages; p++) {
    uint64_t got = *(volatile uint64_t *)word(s, p, value_index(p));
    if (got != s->vals[p]) mismatch("value", i, p, got, s->vals[p]);
    uint64_t zero = *(volatile uint64_t *)word(s, p, zero_index(p));
    if (zero != 0) mismatch("zero word", i, p, zero, 0);
    sum = bench_mix(sum, got);
  }
  return bench_mix(sum, s->pages);
}

static int pick(uint64_t *rng, int used) {
  int start = (int)bench_below(rng, SLOTS);
  for (int k = 0; k < SLOTS; k++) {
    int i = (start + k) % SLOTS;
    if ((slots[i].base != NULL) == used) return i;
  }
  return -1;
}

static void set_prot(int i, int writable) {
  struct slot *s = &slots[i];
  int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  if (mprotect(s->base, (size_t)s->pages * page, prot) != 0) {
    bench_die(who, "mprotect failed: %s", strerror(errno));
  }
  s->writable = writable;
}

static void op_map(uint64_t *rng) {
  int i = pick(rng, 0);
  if (i < 0) return;
  struct slot *s = &slots[i];
  s->pages = 1 + (uint32_t)bench_below(rng, MAX_PAGES);
  void *m = mmap(NULL, (size_t)s->pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (m == MAP_FAILED) bench_die(who, "cannot map %u pages: %s", s->pages, strerror(errno));
  s->base = m;
  s->writable = 1;
  for (uint32_t p = 0; p < s->pages; p++) {
    /* Leave some pages untouched: they must read as zero later. */
    s->vals[p] = bench_below(rng, 4) == 0 ? 0 : bench_rand(rng);
    if (s->vals[p] != 0) *word(s, p, value_index(p)) = s->vals[p];
  }
}

static uint64_t op_unmap(uint64_t *rng, uint64_t sum) {
  int i = pick(rng, 1);
  if (i < 0) return sum;
  sum = verify(i, sum);
  if (munmap(slots[i].base, (size_t)slots[i].pages * page) != 0) {
    bench_die(who, "munmap failed: %s", strerror(errno));
  }
  slots[i].base = NULL;
  return sum;
}

static void op_touch(uint64_t *rng) {
  int i = pick(rng, 1);
  if (i < 0) return;
  struct slot *s = &slots[i];
  if (!s->writable) set_prot(i, 1);
  uint32_t count = 1 + (uint32_t)bench_below(rng, s->pages);
  for (uint32_t k = 0; k < count; k++) {
    uint32_t p = (uint32_t)bench_below(rng, s->pages);
    s->vals[p] = bench_rand(rng) | 1;
    *word(s, p, value_index(p)) = s->vals[p];
  }
}

static uint64_t op_protect(uint64_t *rng, uint64_t sum) {
  int i = pick(rng, 1);
  if (i < 0) return sum;
  set_prot(i, !slots[i].writable);
  return slots[i].writable ? sum : verify(i, sum);
}

/*
 * Replaces a page range of a slot with fresh zero pages: mmap(MAP_FIXED) over it, which tears
 * down the old translations like madvise(MADV_DONTNEED) does (madvise itself is left out of
 * small kernels, CONFIG_ADVISE_SYSCALLS).
 */
static void op_zap(uint64_t *rng) {
  int i = pick(rng, 1);
  if (i < 0) return;
  struct slot *s = &slots[i];
  uint32_t first = (uint32_t)bench_below(rng, s->pages);
  uint32_t count = 1 + (uint32_t)bench_below(rng, s->pages - first);
  int prot = s->writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void *want = s->base + (size_t)first * page;
  void *got = mmap(want, (size_t)count * page, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (got != want) bench_die(who, "mmap(MAP_FIXED) failed: %s", got == MAP_FAILED ? strerror(errno) : "moved");
  for (uint32_t p = first; p < first + count; p++) s->vals[p] = 0;
}

static uint64_t verify_all(uint64_t sum) {
  for (int i = 0; i < SLOTS; i++) {
    if (slots[i].base != NULL) sum = bench_mix(verify(i, sum), (uint64_t)i);
  }
  return sum;
}

/* Runs one operation; forking is allowed only in the top-level process. */
static uint64_t step(uint64_t *rng, uint64_t sum, int may_fork);

static void write_all(int fd, const void *buf, size_t len) {
  const unsigned char *b = buf;
  while (len > 0) {
    ssize_t w = write(fd, b, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) bench_die(who, "report write failed: %s", strerror(errno));
    b += w;
    len -= (size_t)w;
  }
}

static void op_fork(uint64_t *rng) {
  if (nkids == MAX_KIDS) return;
  uint64_t child_seed = bench_rand(rng);
  int fds[2];
  if (pipe(fds) != 0) bench_die(who, "pipe failed: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) bench_die(who, "fork failed: %s", strerror(errno));
  if (pid == 0) {
    who = "churn child";
    close(fds[0]);
    for (int k = 0; k < nkids; k++) close(kids[k].fd);
    errors = 0;
    uint64_t crng = child_seed, csum = child_seed;
    for (int k = 0; k < CHILD_OPS; k++) csum = step(&crng, csum, 0);
    csum = verify_all(csum);
    uint64_t report[2] = {csum, errors};
    write_all(fds[1], report, sizeof report);
    _exit(0);
  }
  close(fds[1]);
  kids[nkids].pid = pid;
  kids[nkids].fd = fds[0];
  nkids++;
}

static uint64_t op_reap(uint64_t sum) {
  if (nkids == 0) return sum;
  struct kid k = kids[0];
  memmove(&kids[0], &kids[1], sizeof kids[0] * (size_t)(nkids - 1));
  nkids--;
  uint64_t report[2];
  size_t got = 0;
  while (got < sizeof report) {
    ssize_t r = read(k.fd, (unsigned char *)report + got, sizeof report - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) bench_die(who, "child %d sent no report", (int)k.pid);
    got += (size_t)r;
  }
  close(k.fd);
  int status = 0;
  if (waitpid(k.pid, &status, 0) != k.pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    bench_die(who, "child %d failed (wait status 0x%x)", (int)k.pid, (unsigned)status);
  }
  errors += report[1];
  return bench_mix(sum, report[0]);
}

static uint64_t step(uint64_t *rng, uint64_t sum, int may_fork) {
  uint64_t r = bench_below(rng, 100);
  if (r < 20) op_touch(rng);
  else if (r < 35) op_map(rng);
  else if (r < 45) sum = op_unmap(rng, sum);
  else if (r < 60) sum = op_protect(rng, sum);
  else if (r < 68) op_zap(rng);
  else if (r < 78) sum = verify_all(sum);
  else if (r < 89) {
    if (may_fork) op_fork(rng);
    else op_touch(rng);
  } else {
    if (may_fork) sum = op_reap(sum);
    else sum = op_unmap(rng, sum);
  }
  return sum;
}

int main(int argc, char **argv) {
  if (argc != 3) bench_die(who, "usage: churn SEED N");
  uint64_t seed = bench_arg(who, "SEED", argv[1], 0, UINT64_MAX);
  uint64_t n = bench_arg(who, "N", argv[2], 1, 100000000);
  page = (size_t)sysconf(_SC_PAGESIZE);
  if (page < 1024 || page % sizeof(uint64_t) != 0) bench_die(who, "unexpected page size %zu", page);
  uint64_t start = bench_now_ns();
  uint64_t rng = seed, sum = seed;
  for (uint64_t i = 0; i < n; i++) sum = step(&rng, sum, 1);
  while (nkids > 0) sum = op_reap(sum);
  sum = verify_all(sum);
  for (int i = 0; i < SLOTS; i++) {
    if (slots[i].base != NULL) munmap(slots[i].base, (size_t)slots[i].pages * page);
  }
  char args[96];
  snprintf(args, sizeof args, "seed=%llu n=%llu errors=%llu", (unsigned long long)seed,
           (unsigned long long)n, (unsigned long long)errors);
  bench_report(who, args, sum, start);
  return errors == 0 ? 0 : 1;
}
