#include "userspace/daemon/dist_acceptor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace orion::daemon {
namespace {

using Clock = HandshakeAdmission::Clock;
using Id = HandshakeAdmission::Id;
using std::chrono::milliseconds;

// Connections accepted per turn of the loop, so that reading first packets keeps its turn.
constexpr int kAcceptBatch = 64;
// The loop's longest sleep: how soon it notices `stop`.
constexpr milliseconds kMaxPollWait{250};
// Out of file descriptors: wait this long before accepting again (the kernel keeps the queue).
constexpr milliseconds kNoFdsPause{100};
// At most one summary line of refused, stalled and evicted handshakes per interval.
constexpr std::chrono::seconds kSummaryInterval{10};

std::string SourceOf(const sockaddr_in& addr) {
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr.sin_addr, text, sizeof(text));
  return text;
}

int MillisUntil(Clock::time_point when, Clock::time_point now) {
  const auto left = std::chrono::ceil<milliseconds>(when - now).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, kMaxPollWait.count()));
}

}  // namespace

DistAcceptor::DistAcceptor(erlang::CNode& node, AcceptorOptions options,
                           OnConnection on_connection)
    : node_(node),
      options_(options),
      on_connection_(std::move(on_connection)),
      admission_(options.limits) {
  options_.workers = std::max<uint32_t>(options_.workers, 1);
  running_.resize(options_.workers);
  for (uint32_t i = 0; i < options_.workers; ++i) {
    abort_fds_.push_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  }
}

DistAcceptor::~DistAcceptor() {
  for (int fd : abort_fds_) {
    if (fd >= 0) ::close(fd);
  }
}

DistAcceptor::Counters DistAcceptor::counters() const {
  std::lock_guard<std::mutex> hold(mu_);
  return counters_;
}

void DistAcceptor::Run(const std::atomic<bool>& stop) {
  for (size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this, i] { Worker(i); });
  Clock::time_point accept_paused_until{};
  std::vector<pollfd> fds;
  std::vector<Id> ids;
  while (!stop.load()) {
    const Clock::time_point now = Clock::now();
    int wait_ms = static_cast<int>(kMaxPollWait.count());
    {
      std::lock_guard<std::mutex> hold(mu_);
      for (Id id : admission_.Expire(now)) {
        CloseLocked(id);
        ++counters_.expired;
      }
      if (auto next = admission_.NextDeadline()) wait_ms = MillisUntil(*next, now);
    }
    LogSummaryIfDue(now);
    const bool accepting = now >= accept_paused_until;
    if (!accepting) wait_ms = std::min(wait_ms, MillisUntil(accept_paused_until, now));
    fds.clear();
    ids.clear();
    fds.push_back({accepting ? node_.listen_fd() : -1, POLLIN, 0});  // poll skips fd -1
    for (const auto& [id, reading] : reading_) {
      fds.push_back({reading.socket->fd, POLLIN, 0});
      ids.push_back(id);
    }
    const int ready = ::poll(fds.data(), fds.size(), wait_ms);
    if (ready < 0 && errno != EINTR) spdlog::error("handshakes: poll: {}", std::strerror(errno));
    if (ready <= 0) continue;
    std::vector<Id> readable;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) readable.push_back(ids[i - 1]);
    }
    ReadFirstPackets(readable);
    if ((fds[0].revents & POLLIN) != 0 && !AcceptAll(Clock::now())) {
      accept_paused_until = Clock::now() + kNoFdsPause;
    }
  }
  {
    std::lock_guard<std::mutex> hold(mu_);
    stopping_ = true;
    const uint64_t one = 1;
    for (int fd : abort_fds_) (void)!::write(fd, &one, sizeof(one));
  }
  ready_cv_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  std::lock_guard<std::mutex> hold(mu_);
  ready_.clear();
  reading_.clear();
}

bool DistAcceptor::AcceptAll(Clock::time_point now) {
  bool refreshed = false;
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_in addr{};
    socklen_t size = sizeof(addr);
    const int fd = ::accept4(node_.listen_fd(), reinterpret_cast<sockaddr*>(&addr), &size,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        spdlog::warn("cannot accept a distribution connection: {}", std::strerror(errno));
        return false;
      }
      return true;  // EAGAIN: the queue is drained
    }
    auto socket = std::make_unique<erlang::DistSocket>(fd);
    std::string source = SourceOf(addr);
    // A peer sends its name as soon as it is connected: it is often here already, and a
    // connection that has sent its name outranks every idle one.
    const ReadResult read = ReadFirstPacket(*socket);
    if (read == ReadResult::kClosed) {
      std::lock_guard<std::mutex> hold(mu_);
      ++counters_.refused;
      continue;
    }
    const HandshakeStage stage = read == ReadResult::kComplete ? HandshakeStage::kNameReceived
                                 : socket->prefix.empty()      ? HandshakeStage::kConnected
                                                               : HandshakeStage::kPartialName;
    // Evict by what they sent until now (once a batch: a flood must not multiply the reads).
    if (!refreshed && AtPendingLimit(source)) {
      RefreshProgress();
      refreshed = true;
    }
    Id id = 0;
    {
      std::lock_guard<std::mutex> hold(mu_);
      const HandshakeAdmission::Decision decision = admission_.Admit(source, now, stage);
      for (Id victim : decision.evicted) {
        CloseLocked(victim);
        ++counters_.evicted;
      }
      if (!decision.admitted) {
        ++counters_.turned_away;
        spdlog::debug("turned away a connection from {}: its pending handshakes got further",
                      source);
        continue;  // closes the socket
      }
      id = *decision.admitted;
      socket->deadline = admission_.DeadlineOf(id);
    }
    reading_.emplace(id, Reading{std::move(socket), std::move(source)});
    Progress(id, read);
  }
  return true;
}

DistAcceptor::ReadResult DistAcceptor::ReadFirstPacket(erlang::DistSocket& socket) {
  std::string& packet = socket.prefix;
  for (;;) {
    size_t want = erlang::kHandshakeLengthBytes;
    if (packet.size() >= erlang::kHandshakeLengthBytes) {
      const size_t length = (static_cast<uint8_t>(packet[0]) << 8) | static_cast<uint8_t>(packet[1]);
      want += length;
      if (length == 0 || want > erlang::kMaxFirstPacketBytes) return ReadResult::kClosed;
      if (packet.size() == want) return ReadResult::kComplete;
    }
    char buffer[erlang::kMaxFirstPacketBytes];
    const ssize_t n = ::recv(socket.fd, buffer, want - packet.size(), 0);
    if (n > 0) {
      packet.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ReadResult::kWaiting;
    return ReadResult::kClosed;  // the peer hung up, or an error
  }
}

bool DistAcceptor::AtPendingLimit(const std::string& source) const {
  std::lock_guard<std::mutex> hold(mu_);
  const HandshakeLimits& limits = admission_.limits();
  return admission_.pending() >= limits.max_pending ||
         admission_.PendingFrom(source) >= limits.max_pending_per_source;
}

void DistAcceptor::RefreshProgress() {
  std::vector<Id> ids;
  ids.reserve(reading_.size());
  for (const auto& [id, reading] : reading_) ids.push_back(id);
  ReadFirstPackets(ids);
}

void DistAcceptor::ReadFirstPackets(const std::vector<Id>& readable) {
  for (Id id : readable) {
    const auto it = reading_.find(id);
    if (it != reading_.end()) Progress(id, ReadFirstPacket(*it->second.socket));
  }
}

void DistAcceptor::Progress(Id id, ReadResult result) {
  const auto it = reading_.find(id);
  std::lock_guard<std::mutex> hold(mu_);
  switch (result) {
    case ReadResult::kWaiting:
      if (!it->second.socket->prefix.empty()) {
        admission_.Advance(id, HandshakeStage::kPartialName);
      }
      return;
    case ReadResult::kClosed:
      spdlog::debug("handshake from {}: closed before its name, or not a handshake",
                    it->second.source);
      admission_.Remove(id);
      reading_.erase(it);
      ++counters_.refused;
      return;
    case ReadResult::kComplete:
      admission_.Advance(id, HandshakeStage::kNameReceived);
      ready_.emplace(id, std::move(it->second));
      reading_.erase(it);
      ready_cv_.notify_all();
      return;
  }
}

void DistAcceptor::CloseLocked(Id id) {
  if (reading_.erase(id) != 0 || ready_.erase(id) != 0) return;
  for (size_t i = 0; i < running_.size(); ++i) {
    if (running_[i] == id) {
      const uint64_t one = 1;
      (void)!::write(abort_fds_[i], &one, sizeof(one));
    }
  }
}

void DistAcceptor::Worker(size_t index) {
  for (;;) {
    Reading pending;
    Id id = 0;
    {
      std::unique_lock<std::mutex> hold(mu_);
      std::optional<Id> next;
      ready_cv_.wait(hold, [&] { return stopping_ || (next = admission_.NextToRun()); });
      if (stopping_) return;
      id = *next;
      const auto it = ready_.find(id);
      if (it == ready_.end()) {  // kept in step with the admission: not expected
        admission_.Remove(id);
        continue;
      }
      pending = std::move(it->second);
      ready_.erase(it);
      // An abort meant for this worker's previous handshake must not end this one.
      uint64_t stale;
      (void)!::read(abort_fds_[index], &stale, sizeof(stale));
      running_[index] = id;
    }
    pending.socket->abort_fd = abort_fds_[index];
    auto connection = node_.AcceptHandshake(std::move(pending.socket));
    {
      std::lock_guard<std::mutex> hold(mu_);
      running_[index].reset();
      const bool still_pending = admission_.Pending(id);  // not evicted, not expired
      admission_.Remove(id);
      if (connection.ok()) {
        ++counters_.completed;
      } else if (still_pending) {
        ++counters_.refused;
      }
    }
    ready_cv_.notify_all();  // this source runs one fewer: another may run now
    if (!connection.ok()) {
      spdlog::debug("handshake from {}: {}", pending.source, connection.status().message());
      continue;
    }
    on_connection_(std::move(*connection));
  }
}

void DistAcceptor::LogSummaryIfDue(Clock::time_point now) {
  Counters now_counters, before;
  {
    std::lock_guard<std::mutex> hold(mu_);
    if (now < next_summary_) return;
    now_counters = counters_;
    before = logged_;
    if (now_counters.refused == before.refused && now_counters.expired == before.expired &&
        now_counters.evicted == before.evicted && now_counters.turned_away == before.turned_away) {
      return;
    }
    logged_ = now_counters;
    next_summary_ = now + kSummaryInterval;
  }
  const HandshakeLimits& limits = options_.limits;
  std::string what;
  const auto add = [&](uint64_t n, const std::string& text) {
    if (n == 0) return;
    what += (what.empty() ? "" : ", ") + std::to_string(n) + " " + text;
  };
  add(now_counters.refused - before.refused,
      "refused (a wrong cookie, not a handshake, or a hang-up)");
  add(now_counters.expired - before.expired,
      "not done within " + std::to_string(limits.deadline.count()) + " ms");
  add(now_counters.evicted - before.evicted, "evicted");
  add(now_counters.turned_away - before.turned_away, "turned away");
  spdlog::warn("distribution handshakes since the last report: {} (pending limits: {} in total, "
               "{} per source address); {} completed",
               what, limits.max_pending, limits.max_pending_per_source,
               now_counters.completed - before.completed);
}

}  // namespace orion::daemon
