package load

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry: microseconds from 1µs to an hour. Three significant
// digits for the run's distribution; two for the per-second ones, which only
// feed the series and the progress line.
const (
	histMaxUs      = int64(time.Hour / time.Microsecond)
	histDigits     = 3
	intervalDigits = 2
	maxReasons     = 32 // distinct error reasons kept per shard; the rest are "other"
)

// A few answers are kept per status so that an assertion can say what a
// failure answered ("the 503s name service-e") and a report can show it,
// which counts alone cannot. The bounds keep that cheap on a long run:
// three bodies show whether a status's answers agree; 512 bytes hold an
// error document (a JSON error with its message is a few hundred) while a
// large success body costs at most that much copying per request, and no
// allocation once its status's sample is full.
const (
	// MaxBodySamples is how many bodies are kept per status: the first
	// ones answered.
	MaxBodySamples = 3
	// MaxBodyBytes is how much of each body is kept; the rest is read and
	// discarded.
	MaxBodyBytes = 512
)

// statusError is the status of a request that got no answer.
const statusError = "error"

// sample is a kept trace id, compact until the result is built.
type sample struct {
	id      TraceID
	startNs int64
	latUs   int64
	status  string
	ok      bool
	warmup  bool
}

// shard is one lock's worth of results. Workers are spread over shards so
// that recording never contends on a single mutex; a shard is a few hundred
// kilobytes whatever the request count.
type shard struct {
	mu       sync.Mutex
	measured *hdr.Histogram
	interval *hdr.Histogram
	ivReq    int64
	ivErr    int64
	all      Counts
	warm     Counts
	lastNs   int64
	status   map[string]int64
	reasons  map[string]int64
	keep     int
	seen     int64
	samples  []sample
	bodies   map[string][]bodySample // per status, at most MaxBodySamples
}

// bodySample is one kept body and when its answer came, so that the
// shards' samples merge into the run's first answers.
type bodySample struct {
	doneNs int64
	text   string
}

// recorder collects results from all workers.
type recorder struct {
	shards   []*shard
	warmupNs int64
}

func newRecorder(nShards, traceSample int, warmup time.Duration) *recorder {
	r := &recorder{shards: make([]*shard, nShards), warmupNs: int64(warmup)}
	keep := 0
	if traceSample > 0 {
		keep = (traceSample + nShards - 1) / nShards
	}
	for i := range r.shards {
		r.shards[i] = &shard{
			measured: hdr.New(1, histMaxUs, histDigits),
			interval: hdr.New(1, histMaxUs, intervalDigits),
			status:   map[string]int64{},
			reasons:  map[string]int64{},
			bodies:   map[string][]bodySample{},
			keep:     keep,
			samples:  make([]sample, 0, min(keep, 1024)),
		}
	}
	return r
}

// outcome of one request.
type outcome struct {
	status string // HTTP status code, gRPC code name, or "error"
	ok     bool
	reason string // why it failed; empty when ok
	// body is the start of the answer's body, at most MaxBodyBytes, in
	// the client's reusable buffer: it is valid only until the client's
	// next request, so the recorder copies it, and only while its
	// status's sample has room.
	body []byte
	// text is the body when the transport has it as a string already:
	// a gRPC failure's status message.
	text string
	// hasBody says body or text holds the answer's body (possibly
	// empty); a gRPC success has none, its reply is not decoded.
	hasBody bool
}

// bodySample is what the recorder keeps of o's body, if anything: a
// request that got no answer keeps its failure's reason.
func (o *outcome) bodySample() (string, bool) {
	switch {
	case o.text != "":
		if len(o.text) > MaxBodyBytes {
			return trimPartialRune(o.text[:MaxBodyBytes]), true
		}
		return o.text, true
	case o.hasBody:
		if len(o.body) >= MaxBodyBytes { // the capture may have cut it
			return trimPartialRune(string(o.body)), true
		}
		return string(o.body), true
	case o.status == statusError:
		return o.reason, true
	}
	return "", false
}

// trimPartialRune drops the bytes of a character that a cut at
// MaxBodyBytes split, so that the sample stays valid UTF-8 through
// load.json.
func trimPartialRune(s string) string {
	for range utf8.UTFMax - 1 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// record stores one completed request. startNs is when it was due (open
// model: scheduled time) and doneNs when it completed, both offsets from the
// run's start.
func (r *recorder) record(worker int, id TraceID, startNs, doneNs int64, o outcome) {
	sh := r.shards[worker%len(r.shards)]
	warm := startNs < r.warmupNs
	latUs := max(1, min((doneNs-startNs)/int64(time.Microsecond), histMaxUs))
	sh.mu.Lock()
	sh.all.Requests++
	if warm {
		sh.warm.Requests++
	}
	if o.ok {
		sh.all.OK++
		if warm {
			sh.warm.OK++
		}
	} else {
		sh.all.Errors++
		sh.ivErr++
		if warm {
			sh.warm.Errors++
		}
		key := o.reason
		if _, ok := sh.reasons[key]; !ok && len(sh.reasons) >= maxReasons {
			key = "other"
		}
		sh.reasons[key]++
	}
	sh.status[o.status]++
	if s := sh.bodies[o.status]; len(s) < MaxBodySamples {
		if text, ok := o.bodySample(); ok {
			sh.bodies[o.status] = append(s, bodySample{doneNs: doneNs, text: text})
		}
	}
	sh.ivReq++
	_ = sh.interval.RecordValue(latUs)
	if !warm {
		_ = sh.measured.RecordValue(latUs)
	}
	if doneNs > sh.lastNs {
		sh.lastNs = doneNs
	}
	if sh.keep > 0 {
		// Reservoir sampling (Vitter's algorithm R): every request of this
		// shard has the same chance of being kept.
		sh.seen++
		s := sample{id: id, startNs: startNs, latUs: latUs, status: o.status, ok: o.ok, warmup: warm}
		if len(sh.samples) < sh.keep {
			sh.samples = append(sh.samples, s)
		} else if j := rand.Int64N(sh.seen); j < int64(sh.keep) {
			sh.samples[j] = s
		}
	}
	sh.mu.Unlock()
}

// interval drains the per-interval histograms into acc and returns the
// interval's request and error counts plus the running totals.
func (r *recorder) drainInterval(acc *hdr.Histogram) (req, errs int64, total Counts) {
	acc.Reset()
	for _, sh := range r.shards {
		sh.mu.Lock()
		acc.Merge(sh.interval)
		sh.interval.Reset()
		req += sh.ivReq
		errs += sh.ivErr
		sh.ivReq, sh.ivErr = 0, 0
		total.Requests += sh.all.Requests
		total.OK += sh.all.OK
		total.Errors += sh.all.Errors
		sh.mu.Unlock()
	}
	return req, errs, total
}

// fill copies the totals into res. Call it after every worker has ended.
func (r *recorder) fill(res *Result, base time.Time, traceSample int) {
	hist := hdr.New(1, histMaxUs, histDigits)
	res.Status = map[string]int64{}
	res.ErrorReasons = map[string]int64{}
	var lastNs int64
	var samples []sample
	bodies := map[string][]bodySample{}
	for _, sh := range r.shards {
		hist.Merge(sh.measured)
		res.Requests += sh.all.Requests
		res.OK += sh.all.OK
		res.Errors += sh.all.Errors
		res.Warmup.Requests += sh.warm.Requests
		res.Warmup.OK += sh.warm.OK
		res.Warmup.Errors += sh.warm.Errors
		res.TracesSeen += sh.seen
		lastNs = max(lastNs, sh.lastNs)
		for k, v := range sh.status {
			res.Status[k] += v
		}
		for k, v := range sh.reasons {
			res.ErrorReasons[k] += v
		}
		for k, v := range sh.bodies {
			bodies[k] = append(bodies[k], v...)
		}
		samples = append(samples, sh.samples...)
	}
	if len(samples) > traceSample && traceSample >= 0 {
		rand.Shuffle(len(samples), func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })
		samples = samples[:traceSample]
	}
	res.Traces = make([]TraceSample, len(samples))
	for i, s := range samples {
		res.Traces[i] = TraceSample{
			TraceID:   s.id.String(),
			Start:     base.Add(time.Duration(s.startNs)),
			LatencyMs: float64(s.latUs) / 1000,
			Status:    s.status,
			OK:        s.ok,
			Warmup:    s.warmup,
		}
	}
	sort.Slice(res.Traces, func(i, j int) bool { return res.Traces[i].Start.Before(res.Traces[j].Start) })
	res.Bodies = firstBodies(bodies)
	res.Histogram = &Histogram{h: hist}
	res.MeasuredEnd = base.Add(time.Duration(max(lastNs, r.warmupNs)))
	res.summarize()
}

// firstBodies keeps, per status, the MaxBodySamples bodies answered first
// among every shard's, or nil when no request kept one.
func firstBodies(bodies map[string][]bodySample) map[string][]string {
	if len(bodies) == 0 {
		return nil
	}
	out := make(map[string][]string, len(bodies))
	for status, bs := range bodies {
		sort.SliceStable(bs, func(i, j int) bool { return bs[i].doneNs < bs[j].doneNs })
		texts := make([]string, 0, min(len(bs), MaxBodySamples))
		for _, b := range bs[:min(len(bs), MaxBodySamples)] {
			texts = append(texts, b.text)
		}
		out[status] = texts
	}
	return out
}
