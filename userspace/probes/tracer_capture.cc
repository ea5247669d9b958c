#include "userspace/probes/tracer_capture.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tracer/orion_tracer_area.h"
#include "userspace/beam/remote_memory.h"
#include "userspace/probes/hist_reader.h"

namespace orion::tracer_blobs {  // tracer/embed.cmake
extern const unsigned char kBeam[];
extern const std::size_t kBeamSize;
extern const unsigned char kNif[];
extern const std::size_t kNifSize;
}  // namespace orion::tracer_blobs

namespace orion::probes {
namespace {

using erlang::Term;
using erlang::TermKind;

// Where the NIF library is copied before the node loads it: a root-owned directory, so that
// nobody but root can change the code the node runs.
constexpr char kNifInstallDir[] = "/var/lib/orion/tracer";
constexpr size_t kMaxMatchSpecBytes = 64 * 1024;

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read ", path, " (", std::strerror(errno), ")");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// An atom's name from its printed form: "'Elixir.Foo'" -> "Elixir.Foo".
std::string AtomName(const std::string& printed) {
  if (printed.size() < 2 || printed.front() != '\'' || printed.back() != '\'') return printed;
  std::string name;
  for (size_t i = 1; i + 1 < printed.size(); ++i) {
    if (printed[i] == '\\' && i + 2 < printed.size()) ++i;
    name += printed[i];
  }
  return name;
}

// Copies the NIF library into kNifInstallDir under a name made of its content's hash, and
// returns the copy's path. A library already there is reused (same content, same name).
StatusOr<std::string> InstallNif(const std::string& bytes) {
  char name[64];
  std::snprintf(name, sizeof(name), "orion_tracer_nif-%016llx.so",
                static_cast<unsigned long long>(Fnv1a(bytes)));
  std::error_code ec;
  std::filesystem::create_directories(kNifInstallDir, ec);
  if (ec)
    return PermissionDenied("cannot create ", kNifInstallDir, ": ", ec.message(),
                            " (run orion as root)");
  struct stat st;
  if (stat(kNifInstallDir, &st) != 0 || st.st_uid != 0 || (st.st_mode & 022) != 0) {
    return PermissionDenied(kNifInstallDir, " must be owned by root and not writable by others");
  }
  chmod(kNifInstallDir, 0755);
  const std::string path = std::string(kNifInstallDir) + "/" + name;
  if (stat(path.c_str(), &st) == 0 && static_cast<size_t>(st.st_size) == bytes.size()) return path;
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return Internal("cannot write ", tmp, ": ", std::strerror(errno));
  }
  chmod(tmp.c_str(), 0644);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal("cannot rename ", tmp, ": ", std::strerror(errno));
  }
  return path;
}

std::string Text(const Term& t) {
  return std::string(t.text());
}

// {error, Binary} from orion_tracer -> the binary; else the term printed.
std::string ErrorText(const Term& reply) {
  if (reply.kind() == TermKind::kTuple && reply.elements().size() == 2 &&
      reply.elements()[0].is_atom("error") &&
      (reply.elements()[1].kind() == TermKind::kBinary ||
       reply.elements()[1].kind() == TermKind::kString)) {
    return Text(reply.elements()[1]);
  }
  return erlang::FormatTerm(reply);
}

bool IsOk(const Term& reply) {
  return reply.is_atom("ok");
}

}  // namespace

std::string DefaultTracerDir() {
  if (const char* env = std::getenv("ORION_TRACER_DIR"); env && *env) return env;
  return "";
}

StatusOr<std::unique_ptr<TracerCapture>> TracerCapture::Start(const TracerCaptureOptions& options) {
  ASSIGN_OR_RETURN(TracerStart start, Launch(options, /*skip_missing=*/false));
  return std::move(start.capture);
}

StatusOr<TracerStart> TracerCapture::StartSkippingMissing(const TracerCaptureOptions& options) {
  return Launch(options, /*skip_missing=*/true);
}

StatusOr<TracerStart> TracerCapture::Launch(const TracerCaptureOptions& options,
                                            bool skip_missing) {
  if (options.patterns.empty()) return InvalidArgument("no function pattern to capture");
  if (options.match_spec.size() > kMaxMatchSpecBytes) {
    return InvalidArgument("the match spec is longer than ", kMaxMatchSpecBytes, " bytes");
  }
  // The node side: the copies embedded in this binary, or the files of a directory.
  const std::string dir = options.tracer_dir.empty() ? DefaultTracerDir() : options.tracer_dir;
  std::string beam_bytes(reinterpret_cast<const char*>(tracer_blobs::kBeam),
                         tracer_blobs::kBeamSize);
  std::string nif_bytes(reinterpret_cast<const char*>(tracer_blobs::kNif), tracer_blobs::kNifSize);
  if (!dir.empty()) {
    auto beam = ReadFile(dir + "/orion_tracer.beam");
    auto nif = ReadFile(dir + "/orion_tracer_nif.so");
    if (!beam.ok() || !nif.ok()) {
      return NotFound("tracer mode: no orion_tracer.beam and orion_tracer_nif.so in ", dir,
                      " (ORION_TRACER_DIR; unset it to use the copies inside orion)");
    }
    beam_bytes = *std::move(beam);
    nif_bytes = *std::move(nif);
  }

  std::unique_ptr<TracerCapture> capture(new TracerCapture());
  capture->options_ = options;
  ASSIGN_OR_RETURN(capture->node_,
                   erlang::NodeClient::Connect(options.node, options.cookie, options.rpc_timeout));

  // The node's OS process must be on this host: orion reads the NIF's counts from its memory.
  ASSIGN_OR_RETURN(Term os_pid, capture->Call("os", "getpid", {}));
  const long pid = std::strtol(Text(os_pid).c_str(), nullptr, 10);
  std::error_code ec;
  const std::string exe =
      std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  if (pid <= 0 || ec || exe.find("beam") == std::string::npos) {
    return FailedPrecondition("node ", options.node, " runs as OS pid ", Text(os_pid),
                              ", which is not a BEAM of this host: tracer mode measures a node "
                              "on the host orion runs on");
  }
  capture->beam_pid_ = static_cast<pid_t>(pid);

  // Claim the node before anything is loaded: registering a name is atomic, so of two orions
  // starting at once one gets the claim and the other is refused. The claim is a process that
  // sleeps 30 s (spawned from an MFA: no code is sent), killed once this start is over (the
  // watchdog then holds orion_tracer_session), or gone by itself if this orion dies first.
  ASSIGN_OR_RETURN(Term claim, capture->Call("erlang", "spawn",
                                             {Term::Atom("timer"), Term::Atom("sleep"),
                                              Term::List({Term::Unsigned(30'000)})}));
  if (!capture->Call("erlang", "register", {Term::Atom("orion_tracer_claim"), claim}).ok()) {
    (void)capture->Call("erlang", "exit", {claim, Term::Atom("kill")});
    return FailedPrecondition("another Orion tracer capture is starting on ", options.node);
  }
  const Status started = [&]() -> Status {
    ASSIGN_OR_RETURN(Term session,
                     capture->Call("erlang", "whereis", {Term::Atom("orion_tracer_session")}));
    if (!session.is_atom("undefined")) {
      return FailedPrecondition("another Orion tracer capture is running on ", options.node,
                                " (its watchdog is ", erlang::FormatTerm(session), ")");
    }
    ASSIGN_OR_RETURN(std::string nif_path, InstallNif(nif_bytes));
    RETURN_IF_ERROR(capture->LoadModule(beam_bytes, nif_path));
    RETURN_IF_ERROR(capture->LocateArea());
    return capture->StartTracing(skip_missing);
  }();
  (void)capture->Call("erlang", "exit", {claim, Term::Atom("kill")});
  // None of the patterns here: no capture (its destructor purges orion_tracer again).
  if (capture->none_present_) return TracerStart{.missing = std::move(capture->missing_)};
  RETURN_IF_ERROR(started);
  std::vector<std::string> missing = capture->missing_;
  return TracerStart{.capture = std::move(capture), .missing = std::move(missing)};
}

TracerCapture::~TracerCapture() {
  if (Status s = Stop(); !s.ok()) spdlog::warn("tracer capture: {}", s.message());
}

const std::string& TracerCapture::own_node() const {
  return node_->own_name();
}

StatusOr<Term> TracerCapture::Call(std::string_view module, std::string_view function,
                                   std::vector<Term> args) {
  if (!node_ || !node_->connected()) return Unavailable("not connected to ", options_.node);
  const std::vector<uint8_t> encoded = erlang::EncodeTermBody(Term::List(std::move(args)));
  ASSIGN_OR_RETURN(
      std::string reply,
      node_->Rpc(module, function,
                 std::string_view(reinterpret_cast<const char*>(encoded.data()), encoded.size()),
                 options_.rpc_timeout));
  ASSIGN_OR_RETURN(Term term, erlang::DecodeTermBody(
                                  std::span<const uint8_t>(
                                      reinterpret_cast<const uint8_t*>(reply.data()), reply.size()),
                                  erlang::DecodeLimits{}));
  if (term.kind() == TermKind::kTuple && !term.elements().empty() &&
      term.elements()[0].is_atom("badrpc")) {
    return Internal(module, ":", function, " failed on ", options_.node, ": ",
                    erlang::FormatTerm(term));
  }
  return term;
}

Status TracerCapture::LoadModule(const std::string& beam, const std::string& nif_path) {
  ASSIGN_OR_RETURN(Term loaded, Call("code", "load_binary",
                                     {Term::Atom("orion_tracer"), Term::String("orion_tracer.beam"),
                                      Term::Binary(beam)}));
  if (loaded.kind() != TermKind::kTuple || loaded.elements().size() != 2 ||
      !loaded.elements()[0].is_atom("module")) {
    // The embedded module is compiled by the erlc orion was built with (OTP 25 on Debian 12),
    // which OTP 25 to 29 load (docs/tracer.md#otp-releases); a later release may refuse it.
    const StatusOr<Term> release = Call("erlang", "system_info", {Term::Atom("otp_release")});
    return FailedPrecondition(
        "orion_tracer.beam does not load on ", options_.node, " (OTP ",
        release.ok() ? Text(*release) : "?", "): ", erlang::FormatTerm(loaded),
        ". Compile tracer/orion_tracer.erl with that release's erlc, put the .beam in a "
        "directory with orion_tracer_nif.so (<build>/tracer/) and set ORION_TRACER_DIR to it");
  }
  module_loaded_ = true;
  const std::string stem = nif_path.substr(0, nif_path.size() - 3);  // load_nif adds ".so"
  ASSIGN_OR_RETURN(Term nif, Call("orion_tracer", "load_nif", {Term::Binary(stem)}));
  if (!IsOk(nif)) {
    return Internal("loading ", nif_path, " into ", options_.node, ": ", erlang::FormatTerm(nif));
  }
  // The proof that the node is the process we will attach to: it maps our library now (a node
  // of another host could have an OS pid that is a BEAM here too).
  ASSIGN_OR_RETURN(std::string maps, ReadFile("/proc/" + std::to_string(beam_pid_) + "/maps"));
  if (maps.find(nif_path) == std::string::npos) {
    return FailedPrecondition("node ", options_.node, " loaded ", nif_path, " but OS pid ",
                              beam_pid_, " of this host does not map it: ",
                              "the node runs on another host (tracer mode measures local nodes)");
  }
  return OkStatus();
}

// The NIF's counts: their address from orion_tracer:area(), checked by reading the header.
Status TracerCapture::LocateArea() {
  ASSIGN_OR_RETURN(Term address, Call("orion_tracer", "area", {}));
  const auto value = address.to_uint64();
  if (!value || *value == 0) {
    return Internal("orion_tracer:area() on ", options_.node, " answered ",
                    erlang::FormatTerm(address));
  }
  orion_tracer_area header;
  RETURN_IF_ERROR(beam::ReadRemote(beam_pid_, *value, &header, sizeof(header)));
  if (header.magic != ORION_TRACER_MAGIC || header.version != ORION_TRACER_VERSION ||
      header.size != sizeof(header) || header.max_threads != ORION_TRACER_MAX_THREADS ||
      header.max_targets != ORION_TRACER_MAX_TARGETS || header.hist_slots != ORION_BUCKET_COUNT) {
    return FailedPrecondition("the orion_tracer NIF in ", options_.node,
                              " is not the one this orion was built with (its counts have "
                              "another layout): unset ORION_TRACER_DIR or rebuild it");
  }
  area_ = *value;
  return OkStatus();
}

Status TracerCapture::StartTracing(bool skip_missing) {
  std::vector<Term> targets;
  for (const auto& p : options_.patterns) {
    targets.push_back(Term::Tuple({Term::Atom(AtomName(p.module)),
                                   Term::Atom(p.function ? AtomName(*p.function) : "_"),
                                   p.arity ? Term::Integer(*p.arity) : Term::Atom("_")}));
  }
  const Term spec =
      options_.match_spec.empty() ? Term::Atom("_") : Term::Binary(options_.match_spec);
  ASSIGN_OR_RETURN(Term reply, Call("orion_tracer", "start",
                                    {Term::Atom(node_->own_name()), Term::List(std::move(targets)),
                                     spec, Term::Integer(options_.time_limit.count()),
                                     Term::Atom(skip_missing ? "skip_missing" : "all")}));
  // {ok, Watchdog, [{Id, MfaBinary, {M, F, A}}], [Missing]}, or with skip_missing and none of
  // the patterns on the node, {error, {not_loaded, [Missing]}}.
  const auto texts = [](const Term& list) {
    std::vector<std::string> out;
    for (const Term& t : list.elements()) {
      if (t.kind() == TermKind::kBinary) out.push_back(Text(t));
    }
    return out;
  };
  const auto parts = reply.elements();
  if (reply.kind() == TermKind::kTuple && parts.size() == 2 && parts[0].is_atom("error") &&
      parts[1].kind() == TermKind::kTuple && parts[1].elements().size() == 2 &&
      parts[1].elements()[0].is_atom("not_loaded")) {
    missing_ = texts(parts[1].elements()[1]);
    none_present_ = true;
    return NotFound("none of the patterns is on ", options_.node);
  }
  if (reply.kind() != TermKind::kTuple || parts.size() != 4 || !parts[0].is_atom("ok") ||
      parts[1].kind() != TermKind::kPid) {
    return InvalidArgument(ErrorText(reply));
  }
  missing_ = texts(parts[3]);
  watchdog_ = reply.elements()[1];
  target_terms_ = reply.elements()[2];
  for (const Term& t : reply.elements()[2].elements()) {
    if (t.kind() != TermKind::kTuple || t.elements().size() != 3) continue;
    auto id = t.elements()[0].to_uint64();
    if (!id || *id >= ORION_TRACER_MAX_TARGETS) continue;
    targets_[static_cast<uint32_t>(*id)] = Text(t.elements()[1]);
  }
  spdlog::debug("tracer capture on {} (OS pid {}): {} functions, watchdog {}", options_.node,
                beam_pid_, targets_.size(), erlang::FormatTerm(*watchdog_));
  return OkStatus();
}

StatusOr<bool> TracerCapture::Alive() {
  if (!watchdog_) return false;
  ASSIGN_OR_RETURN(Term alive, Call("erlang", "is_process_alive", {*watchdog_}));
  return alive.is_atom("true");
}

Status TracerCapture::Stop() {
  Status result = OkStatus();
  if (watchdog_ && node_ && node_->connected()) {
    auto stopped = Call("orion_tracer", "stop", {*watchdog_, target_terms_});
    if (!stopped.ok()) {
      result = stopped.status();
    } else if (!IsOk(*stopped)) {
      result = Internal("stopping the capture on ", options_.node, ": ", ErrorText(*stopped));
    }
  }
  watchdog_.reset();
  // The tracing is cleared: the counts are final. Take them before the purge frees them.
  if (area_ != 0 && !final_) {
    auto last = ReadArea();
    if (last.ok()) {
      final_ = *std::move(last);
    } else {
      spdlog::warn("reading the final counts on {}: {} (reporting the last ones read)",
                   options_.node, last.status().message());
      final_ = last_ ? *last_ : TracerSnapshot{};
    }
  }
  if (Status s = Unload(); !s.ok() && result.ok()) result = s;
  return result;
}

// Purges orion_tracer from the node (which also unloads its NIF library).
Status TracerCapture::Unload() {
  if (!module_loaded_ || !node_ || !node_->connected()) return OkStatus();
  module_loaded_ = false;
  // An old version (left by an earlier orion that was killed) must go first: code:delete only
  // works when there is none. delete answers false when the module is gone already (a watchdog
  // that timed out removes it itself).
  for (const char* step : {"soft_purge", "delete", "soft_purge"}) {
    ASSIGN_OR_RETURN(Term done, Call("code", step, {Term::Atom("orion_tracer")}));
    if (!done.is_atom("true") && std::string_view(step) != "delete") {
      return Internal("code:", step, "(orion_tracer) on ", options_.node, " answered ",
                      erlang::FormatTerm(done), " (a process still runs its code?)");
    }
  }
  return OkStatus();
}

namespace {

// The NIF's per-thread blocks in the node, as they are now.
Status ReadThreads(pid_t pid, uint64_t area, orion_tracer_area* header,
                   std::vector<orion_tracer_thread>* threads) {
  RETURN_IF_ERROR(beam::ReadRemote(pid, area, header, sizeof(*header)));
  if (header->magic != ORION_TRACER_MAGIC) {
    return Unavailable("the orion_tracer NIF's counts are gone from the node (module purged)");
  }
  threads->clear();
  const uint32_t n = std::min<uint32_t>(header->nthreads, ORION_TRACER_MAX_THREADS);
  for (uint32_t i = 0; i < n; ++i) {
    if (header->threads[i] == 0) continue;  // being set up by its thread
    threads->emplace_back();
    RETURN_IF_ERROR(
        beam::ReadRemote(pid, header->threads[i], &threads->back(), sizeof(orion_tracer_thread)));
  }
  return OkStatus();
}

}  // namespace

StatusOr<uint64_t> TracerCapture::Hits() const {
  if (final_) return final_->capture.events;
  orion_tracer_area header;
  std::vector<orion_tracer_thread> threads;
  RETURN_IF_ERROR(ReadThreads(beam_pid_, area_, &header, &threads));
  uint64_t total = 0;
  for (const auto& t : threads) {
    total += t.counters[ORION_TRACER_CALLS] + t.counters[ORION_TRACER_RETURNS] +
             t.counters[ORION_TRACER_EXCEPTIONS];
  }
  return total;
}

StatusOr<TracerSnapshot> TracerCapture::Read() const {
  if (final_) return *final_;
  auto snap = ReadArea();
  if (snap.ok()) last_ = *snap;
  return snap;
}

StatusOr<TracerSnapshot> TracerCapture::ReadArea() const {
  if (area_ == 0) return FailedPrecondition("the tracer capture did not start");
  orion_tracer_area header;
  std::vector<orion_tracer_thread> threads;
  RETURN_IF_ERROR(ReadThreads(beam_pid_, area_, &header, &threads));
  TracerSnapshot snap;
  uint64_t counters[ORION_TRACER_COUNTER_COUNT] = {};
  for (const auto& t : threads) {
    for (int i = 0; i < ORION_TRACER_COUNTER_COUNT; ++i) counters[i] += t.counters[i];
  }
  snap.calls = counters[ORION_TRACER_CALLS];
  snap.returns = counters[ORION_TRACER_RETURNS];
  snap.exceptions = counters[ORION_TRACER_EXCEPTIONS];
  snap.unpaired = counters[ORION_TRACER_UNPAIRED];
  snap.threads_over_limit = header.threads_full_events;
  snap.capture.events = snap.calls + snap.returns + snap.exceptions;
  snap.capture.matched = snap.calls;
  snap.capture.lost.depth_overflow = counters[ORION_TRACER_DEPTH_OVERFLOW];
  snap.capture.lost.frames_evicted = counters[ORION_TRACER_PROCS_FULL];

  auto hist = std::make_unique<orion_tracer_hist>();
  for (const auto& [id, mfa] : targets_) {
    FunctionStats f;
    f.mfa = mfa;
    HistogramSum sum;
    for (const auto& t : threads) {
      f.exceptions += t.exceptions[id];
      if (t.hists[id] == 0) continue;
      RETURN_IF_ERROR(beam::ReadRemote(beam_pid_, t.hists[id], hist.get(), sizeof(*hist)));
      sum.Add(hist->count, hist->sum_ns, hist->min_ns, hist->max_ns, hist->slots);
    }
    RETURN_IF_ERROR(sum.FoldInto(&f.wall));
    snap.capture.functions.push_back(std::move(f));
  }
  std::sort(snap.capture.functions.begin(), snap.capture.functions.end(),
            [](const FunctionStats& a, const FunctionStats& b) { return a.mfa < b.mfa; });
  return snap;
}

}  // namespace orion::probes
