package server

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// limiter is a token bucket per key (an agent, or an address for the
// requests made before there is one: enrolment, login). It is safe for
// concurrent use.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets is how many buckets the limiter keeps before it sweeps the
// full ones: a full bucket is the same as none.
const maxBuckets = 10000

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: time.Now, buckets: make(map[string]*bucket)}
}

// allow takes a token from key's bucket. When there is none, it reports
// false and how long until there is.
func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// sweep drops the buckets that have refilled.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// rateLimit answers 429 with Retry-After, and reports false, when key has
// no token left.
func (s *Server) rateLimit(w http.ResponseWriter, key string) bool {
	ok, wait := s.limiter.allow(key)
	if !ok {
		retryAfter(w, wait)
		writeError(w, http.StatusTooManyRequests, "too many requests: retry after the time Retry-After says")
	}
	return ok
}

// addrKey is the rate-limit key of a request's remote address.
func addrKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr " + host
}

// slotWait is how long a request waits for room among the requests in
// flight before it is answered 503.
const slotWait = time.Second

// acquire takes one of the MaxConcurrent slots, waiting at most slotWait.
func (s *Server) acquire(r *http.Request) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

func (s *Server) release() { <-s.slots }

// busy answers 503 for a server with no room.
func busy(w http.ResponseWriter) {
	retryAfter(w, time.Second)
	writeError(w, http.StatusServiceUnavailable, "server busy: retry after the time Retry-After says")
}

// limited runs h in one of the MaxConcurrent slots.
func (s *Server) limited(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.acquire(r) {
			busy(w)
			return
		}
		defer s.release()
		h.ServeHTTP(w, r)
	})
}
