// Synthetic probe benchmark (issue 7): USDT probes with the BEAM's names and signature (pid
// string, MFA string, depth) fired from a loop in this process, timed with nothing attached,
// with an empty BPF program (empty_probe.bpf.c), and with orion's capture programs targeting an
// unrelated function or the fired one. The strings are constants, so the BEAM's formatting is
// not in these numbers: what is left is the trap and the BPF programs, the kernel side.
//
// Each call fires an entry and a return probe, from one of two copies of the call site: probe
// sites on a 1-byte nop (what systemtap's sys/sdt.h emits, as in the BEAM) and on a 5-byte nop
// (which Linux >= 6.18 on x86-64 can turn into a call instead of a trap).
//
// Then the same for pairing in the BEAM (patches 0007-0008): one erlang:orion__call probe per call,
// integer arguments. This process carries a pairing table (erts_orion_pair, the layout of
// beam_dtrace_build/include/erl_orion_pair.h) so that orion's capture pairs "in" it, and plays
// the emulator's part: it answers the wake pipe of patch 0008 (a thread that marks every
// record's breakpoints "installed"), activates the capture's record and fires orion__call for
// slot 0 (matching) or for another record (non-matching: another capture's calls).
//
//   synthetic_probe_bench [--calls N] [--reps R]     (root: attaches BPF programs to itself)
//
// Prints a Markdown table on stdout (scripts/bench.sh beam puts it in docs/performance.md).
#define _SDT_HAS_SEMAPHORES 1
#include <spdlog/spdlog.h>
#include <sys/sdt.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "beam_dtrace_build/include/erl_orion_pair.h"
#include "empty_probe.skel.h"
#include "userspace/beam/beam_process.h"
#include "userspace/probes/bpf_environment.h"
#include "userspace/probes/capture.h"
#include "userspace/probes/mfa_pattern.h"
#include "userspace/probes/usdt_links.h"

// The semaphores sys/sdt.h tests (one per probe name, shared by all its sites).
#define ORION_SEMAPHORE(name) \
  __attribute__((section(".probes"), used)) volatile unsigned short erlang_##name##_semaphore = 0
extern "C" {
ORION_SEMAPHORE(global__function__entry);
ORION_SEMAPHORE(local__function__entry);
ORION_SEMAPHORE(function__return);
ORION_SEMAPHORE(process__exit);
ORION_SEMAPHORE(process__scheduled);
ORION_SEMAPHORE(process__unscheduled);
ORION_SEMAPHORE(orion__call);
ORION_SEMAPHORE(orion__function);
// What the patched emulator exports (patches 0007-0008); initialized, so in .data where orion finds it.
__attribute__((used)) ErtsOrionPair erts_orion_pair = {
    ERTS_ORION_PAIR_MAGIC, ERTS_ORION_PAIR_VERSION, sizeof(ErtsOrionPair), ERTS_ORION_PAIR_OWNERS,
    /*wake_fd=*/-1, 0, {}};
}

namespace {

constexpr const char* kPid = "<0.123.0>";
constexpr const char* kHotMfa = "bench:hot/1";
constexpr int kDepth = 10;

// One call as the patched emu reports it: an entry and a return at the same depth.
__attribute__((noinline)) void CallOnNop1(const char* pid, const char* mfa, int depth) {
  if (erlang_global__function__entry_semaphore) {
    DTRACE_PROBE3(erlang, global__function__entry, pid, mfa, depth);
  }
  if (erlang_function__return_semaphore) DTRACE_PROBE3(erlang, function__return, pid, mfa, depth);
}

// The probes orion attaches to but this benchmark never fires (attaching needs a site).
__attribute__((noinline, used)) void NeverCalled(const char* pid, const char* mfa, int depth) {
  DTRACE_PROBE3(erlang, local__function__entry, pid, mfa, depth);
  DTRACE_PROBE3(erlang, process__exit, pid, mfa, depth);
  DTRACE_PROBE2(erlang, process__scheduled, pid, mfa);
  DTRACE_PROBE1(erlang, process__unscheduled, pid);
}

// The same call with its probe sites on a 5-byte nop (`.nops 5`, one nopl instruction).
#undef _SDT_NOP
#define _SDT_NOP .nops 5
__attribute__((noinline)) void CallOnNop5(const char* pid, const char* mfa, int depth) {
  if (erlang_global__function__entry_semaphore) {
    DTRACE_PROBE3(erlang, global__function__entry, pid, mfa, depth);
  }
  if (erlang_function__return_semaphore) DTRACE_PROBE3(erlang, function__return, pid, mfa, depth);
}

using CallSite = void (*)(const char*, const char*, int);

// One call paired by the emulator: one probe, four integers in registers.
__attribute__((noinline)) void PairedOnNop5(int owner_slot) {
  if (erlang_orion__call_semaphore) {
    DTRACE_PROBE4(erlang, orion__call, owner_slot, 0u, static_cast<uint64_t>(1500),
                  static_cast<uint64_t>(1400));
  }
}
__attribute__((noinline, used)) void NameSlot(int owner_slot, const char* mfa) {
  DTRACE_PROBE2(erlang, orion__function, owner_slot, mfa);
}

#undef _SDT_NOP
#define _SDT_NOP nop
__attribute__((noinline)) void PairedOnNop1(int owner_slot) {
  if (erlang_orion__call_semaphore) {
    DTRACE_PROBE4(erlang, orion__call, owner_slot, 0u, static_cast<uint64_t>(1500),
                  static_cast<uint64_t>(1400));
  }
}

using PairedSite = void (*)(int);

// CPU time of this thread (user + the kernel's uprobe handling, which runs in its context), so
// that other load on the machine does not count.
double ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double NsPerCall(CallSite site, int calls) {
  const double start = ThreadCpuNs();
  for (int i = 0; i < calls; ++i) site(kPid, kHotMfa, kDepth);
  return (ThreadCpuNs() - start) / calls;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

orion::beam::BeamProcess Self() {
  orion::beam::BeamProcess self;
  self.pid = getpid();
  self.exe = "/proc/self/exe";
  self.attach_path = "/proc/self/exe";
  self.flavor = orion::beam::Flavor::kEmu;
  self.function_probes = true;
  self.exception_probe = false;
  self.pair_probe = true;
  return self;
}

// A state of the benchmark: attaches on construction, detaches on destruction.
struct Attached {
  empty_probe_bpf* empty = nullptr;
  orion::probes::UsdtLinks links;
  std::unique_ptr<orion::probes::Capture> capture;
  ~Attached() {
    links.DetachAll();
    if (empty) empty_probe_bpf__destroy(empty);
  }
};

std::unique_ptr<Attached> AttachEmpty() {
  auto a = std::make_unique<Attached>();
  a->empty = empty_probe_bpf__open_and_load();
  if (!a->empty) return nullptr;
  for (const char* probe : {"global__function__entry", "local__function__entry", "function__return",
                            "process__exit", "process__scheduled", "process__unscheduled"}) {
    if (!a->links.Attach(a->empty->progs.empty_probe, getpid(), "/proc/self/exe", probe, 0).ok()) {
      return nullptr;
    }
  }
  return a;
}

std::unique_ptr<Attached> AttachEmptyPaired() {
  auto a = std::make_unique<Attached>();
  a->empty = empty_probe_bpf__open_and_load();
  if (!a->empty) return nullptr;
  if (!a->links.Attach(a->empty->progs.empty_probe, getpid(), "/proc/self/exe", "orion__call", 0)
           .ok()) {
    return nullptr;
  }
  return a;
}

std::unique_ptr<Attached> AttachOrion(const char* pattern, bool pairing = false) {
  auto parsed = orion::probes::ParseMfaPattern(pattern);
  if (!parsed.ok()) return nullptr;
  auto capture =
      orion::probes::Capture::Start({Self()}, {.patterns = {*parsed}, .pairing = pairing});
  if (!capture.ok()) {
    std::fprintf(stderr, "synthetic_probe_bench: %s\n", capture.status().ToString().c_str());
    return nullptr;
  }
  auto a = std::make_unique<Attached>();
  a->capture = std::move(*capture);
  return a;
}

// The emulator's part of installing (patch 0008): the breakpoints it would put in are the
// loop's "function", so a wake only has to acknowledge every record, as the emulator's install
// does once it is done. Runs on a thread of its own, blocked in read() as the emulator's
// signal dispatcher is.
void ServeWakePipe() {
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("synthetic_probe_bench: pipe");
    std::exit(1);
  }
  erts_orion_pair.wake_fd = fds[1];
  std::thread([fd = fds[0]] {
    int message;
    while (read(fd, &message, sizeof(message)) == static_cast<ssize_t>(sizeof(message))) {
      if (message != ERTS_ORION_PAIR_WAKE) continue;
      for (auto& o : erts_orion_pair.owner) {
        const uint32_t request = __atomic_load_n(&o.request, __ATOMIC_ACQUIRE);
        __atomic_store_n(&o.breakpoints, request ? 1u : 0u, __ATOMIC_RELAXED);
        __atomic_store_n(&o.installed, request, __ATOMIC_RELEASE);
      }
    }
  }).detach();
}

// The emulator's part of pairing for the capture's record: activate it, give `kHotMfa` slot 0
// and name it. Returns the record's (owner << 16) | 0, or -1.
int ActAsEmulator() {
  for (int owner = 0; owner < ERTS_ORION_PAIR_OWNERS; ++owner) {
    ErtsOrionPairOwner& o = erts_orion_pair.owner[owner];
    if (__atomic_load_n(&o.request, __ATOMIC_ACQUIRE) == 0) continue;
    std::snprintf(o.name[0], sizeof(o.name[0]), "%s", kHotMfa);
    o.nslots = 1;
    __atomic_store_n(&o.active, o.request, __ATOMIC_RELEASE);
    NameSlot(owner << 16, kHotMfa);
    return owner << 16;
  }
  return -1;
}

// The capture of the fired function saw every call of both sites (the programs really ran).
bool CountedEveryCall(const orion::probes::Capture& capture, uint64_t expected) {
  auto snapshot = capture.Read();
  if (!snapshot.ok()) return false;
  for (const auto& f : snapshot->functions) {
    if (f.mfa == kHotMfa && f.wall.count() == expected) return true;
  }
  std::fprintf(stderr, "synthetic_probe_bench: orion did not count %llu calls of %s\n",
               static_cast<unsigned long long>(expected), kHotMfa);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 200000, reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--calls") == 0) calls = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
  }
  orion::probes::InstallLibbpfLogger(false);
  spdlog::set_level(spdlog::level::err);  // not a BEAM: no exception__catch probe, on purpose
  ServeWakePipe();

  struct State {
    const char* name;
    std::function<std::unique_ptr<Attached>()> attach;  // null: nothing attached
  };
  const std::vector<State> states = {
      {"nothing attached", nullptr},
      {"empty BPF program", AttachEmpty},
      {"orion, unrelated function", [] { return AttachOrion("unrelated:f/1"); }},
      {"orion, the fired function", [] { return AttachOrion(kHotMfa); }},
  };
  const CallSite sites[] = {CallOnNop1, CallOnNop5};
  std::vector<std::vector<std::vector<double>>> ns(
      states.size(), std::vector<std::vector<double>>(2, std::vector<double>()));
  for (int rep = 0; rep < reps; ++rep) {
    for (size_t k = 0; k < states.size(); ++k) {
      const size_t s = (k + rep) % states.size();  // rotate the order every repetition
      std::unique_ptr<Attached> attached;
      if (states[s].attach && !(attached = states[s].attach())) {
        std::fprintf(stderr, "synthetic_probe_bench: attaching '%s' failed\n", states[s].name);
        return 1;
      }
      for (int site = 0; site < 2; ++site) ns[s][site].push_back(NsPerCall(sites[site], calls));
      if (s == 3 && !CountedEveryCall(*attached->capture, 2 * static_cast<uint64_t>(calls))) {
        return 1;
      }
    }
  }

  double med[4][2];
  for (size_t s = 0; s < states.size(); ++s) {
    for (int site = 0; site < 2; ++site) med[s][site] = Median(ns[s][site]);
  }
  std::printf(
      "| state | CPU ns per call, sites on a 1-byte nop | CPU ns per call, sites on a 5-byte nop "
      "|\n");
  std::printf("|---|---:|---:|\n");
  for (size_t s = 0; s < states.size(); ++s) {
    std::printf("| %s | %.0f | %.0f |\n", states[s].name, med[s][0], med[s][1]);
  }
  std::printf(
      "\nKernel side per probe hit against the empty program (each minus nothing attached):"
      " non-matching %.2fx (1-byte nop) / %.2fx (5-byte nop), matching %.2fx / %.2fx;"
      " the empty program costs %.0f / %.0f ns per hit. %d calls (2 probe hits each) per"
      " sample, median of %d repetitions, states interleaved.\n",
      (med[2][0] - med[0][0]) / (med[1][0] - med[0][0]),
      (med[2][1] - med[0][1]) / (med[1][1] - med[0][1]),
      (med[3][0] - med[0][0]) / (med[1][0] - med[0][0]),
      (med[3][1] - med[0][1]) / (med[1][1] - med[0][1]), (med[1][0] - med[0][0]) / 2,
      (med[1][1] - med[0][1]) / 2, calls, reps);

  // Pairing in the BEAM: one orion__call hit per call.
  struct PairedState {
    const char* name;
    std::function<std::unique_ptr<Attached>()> attach;
    bool matching;
  };
  const std::vector<PairedState> paired = {
      {"nothing attached", nullptr, true},
      {"empty BPF program", AttachEmptyPaired, true},
      {"orion, another capture's calls", [] { return AttachOrion(kHotMfa, true); }, false},
      {"orion, the capture's function", [] { return AttachOrion(kHotMfa, true); }, true},
  };
  const PairedSite paired_sites[] = {PairedOnNop1, PairedOnNop5};
  std::vector<std::vector<std::vector<double>>> pns(
      paired.size(), std::vector<std::vector<double>>(2, std::vector<double>()));
  for (int rep = 0; rep < reps; ++rep) {
    for (size_t k = 0; k < paired.size(); ++k) {
      const size_t s = (k + rep) % paired.size();
      std::unique_ptr<Attached> attached;
      if (paired[s].attach && !(attached = paired[s].attach())) {
        std::fprintf(stderr, "synthetic_probe_bench: attaching '%s' failed\n", paired[s].name);
        return 1;
      }
      int owner_slot = 0;
      if (attached && attached->capture) {
        if (attached->capture->PairedBeams() != 1 || (owner_slot = ActAsEmulator()) < 0) {
          std::fprintf(stderr, "synthetic_probe_bench: the capture does not pair here\n");
          return 1;
        }
        // Another capture's record: the program looks it up and drops the call.
        if (!paired[s].matching) owner_slot = ((owner_slot >> 16) + 1) % ERTS_ORION_PAIR_OWNERS << 16;
      }
      for (int site = 0; site < 2; ++site) {
        const double start = ThreadCpuNs();
        for (int i = 0; i < calls; ++i) paired_sites[site](owner_slot);
        pns[s][site].push_back((ThreadCpuNs() - start) / calls);
      }
      if (s == 3 && !CountedEveryCall(*attached->capture, 2 * static_cast<uint64_t>(calls))) {
        return 1;
      }
    }
  }
  double pmed[4][2];
  for (size_t s = 0; s < paired.size(); ++s) {
    for (int site = 0; site < 2; ++site) pmed[s][site] = Median(pns[s][site]);
  }
  std::printf(
      "\nPairing in the BEAM (patches 0007-0008): one `orion__call` hit per call, four integer "
      "arguments, the loop playing the emulator's part.\n\n"
      "| state | CPU ns per call, site on a 1-byte nop | CPU ns per call, site on a 5-byte nop "
      "|\n|---|---:|---:|\n");
  for (size_t s = 0; s < paired.size(); ++s) {
    std::printf("| %s | %.0f | %.0f |\n", paired[s].name, pmed[s][0], pmed[s][1]);
  }
  std::printf(
      "\nKernel side per probe hit against the empty program (each minus nothing attached):"
      " another capture's call %.2fx (1-byte nop) / %.2fx (5-byte nop), the capture's own"
      " %.2fx / %.2fx; the empty program costs %.0f / %.0f ns per hit.\n",
      (pmed[2][0] - pmed[0][0]) / (pmed[1][0] - pmed[0][0]),
      (pmed[2][1] - pmed[0][1]) / (pmed[1][1] - pmed[0][1]),
      (pmed[3][0] - pmed[0][0]) / (pmed[1][0] - pmed[0][0]),
      (pmed[3][1] - pmed[0][1]) / (pmed[1][1] - pmed[0][1]), pmed[1][0] - pmed[0][0],
      pmed[1][1] - pmed[0][1]);
  return 0;
}
