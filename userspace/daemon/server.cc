#include "userspace/daemon/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

namespace orion::daemon {

// Shared between a connection's thread and the ReplyChannels handed out for it.
struct ConnectionState {
  std::unique_ptr<erlang::Connection> conn;
  int wake_fd = -1;
  std::mutex mu;
  std::deque<std::pair<erlang_pid, std::vector<uint8_t>>> outbox;
  bool closed = false;

  ~ConnectionState() {
    if (wake_fd >= 0) ::close(wake_fd);
  }
};

namespace {
// A peer that never reads its replies cannot make the outbox grow without bound.
constexpr size_t kMaxOutbox = 256;
}  // namespace

bool ReplyChannel::Send(const erlang_pid& to, std::vector<uint8_t> bytes) const {
  const std::shared_ptr<ConnectionState> state = conn_.lock();
  if (!state) return false;
  {
    std::lock_guard<std::mutex> hold(state->mu);
    if (state->closed || state->outbox.size() >= kMaxOutbox) return false;
    state->outbox.emplace_back(to, std::move(bytes));
  }
  const uint64_t one = 1;
  return ::write(state->wake_fd, &one, sizeof(one)) == sizeof(one);
}

bool ReplyChannel::Open() const {
  const std::shared_ptr<ConnectionState> state = conn_.lock();
  if (!state) return false;
  std::lock_guard<std::mutex> hold(state->mu);
  return !state->closed;
}

Server::~Server() = default;

void Server::Run(const std::atomic<bool>& stop) {
  DistAcceptor acceptor(node_, options_.handshakes,
                        [this, &stop](std::unique_ptr<erlang::Connection> connection) {
                          Adopt(std::move(connection), stop);
                        });
  acceptor.Run(stop);
  std::lock_guard<std::mutex> hold(threads_mu_);
  for (ServeThread& t : threads_) t.thread.join();
  threads_.clear();
}

void Server::Adopt(std::unique_ptr<erlang::Connection> connection, const std::atomic<bool>& stop) {
  std::lock_guard<std::mutex> hold(threads_mu_);
  // Join the threads of connections that ended, so a long-lived daemon does not accumulate
  // them (and never waits here for one that still serves).
  std::erase_if(threads_, [](ServeThread& t) {
    if (!t.done->load()) return false;
    t.thread.join();
    return true;
  });
  if (active_.load() >= options_.max_connections) {
    refused_.fetch_add(1);
    spdlog::warn("refused a connection from {}: {} connections already served",
                 connection->peer(), options_.max_connections);
    return;  // the Connection's destructor closes it
  }
  auto state = std::make_shared<ConnectionState>();
  state->conn = std::move(connection);
  state->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spdlog::info("connection from {}", state->conn->peer());
  active_.fetch_add(1);
  auto done = std::make_shared<std::atomic<bool>>(false);
  threads_.push_back({std::thread([this, state, &stop, done] {
                        Serve(state, stop);
                        active_.fetch_sub(1);
                        done->store(true);
                      }),
                      done});
}

void Server::Serve(std::shared_ptr<ConnectionState> state, const std::atomic<bool>& stop) {
  erlang::Connection& conn = *state->conn;
  const std::string peer = conn.peer();
  while (!stop.load()) {
    pollfd fds[2] = {{conn.fd(), POLLIN, 0}, {state->wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, 500) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      uint64_t count;
      (void)!::read(state->wake_fd, &count, sizeof(count));
      std::deque<std::pair<erlang_pid, std::vector<uint8_t>>> pending;
      {
        std::lock_guard<std::mutex> hold(state->mu);
        pending.swap(state->outbox);
      }
      for (auto& [to, bytes] : pending) {
        const Status sent = conn.Send(to, bytes, 5000);
        if (!sent.ok()) spdlog::warn("reply to {} lost: {}", peer, sent.message());
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      auto received = conn.Receive(0, options_.max_message_bytes);
      if (!received.ok()) {
        spdlog::info("{}", received.status().message());
        break;
      }
      if (received->has_value()) {
        handler_(**received, ReplyChannel(state));
      }
    }
  }
  std::lock_guard<std::mutex> hold(state->mu);
  state->closed = true;
  state->outbox.clear();
}

}  // namespace orion::daemon
