package compare

import (
	"math"
	"sort"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// weighted is one value and how often it was seen: an HDR bin or a single
// span duration.
type weighted struct {
	v float64
	n int64
}

// KS is a two-sample Kolmogorov–Smirnov test.
//
// Why KS: latency regressions often live in the tail (p99 doubles while the
// median holds), and KS compares whole distributions, so it sees a tail
// shift that Mann–Whitney, a test of location, would call noise. It needs
// no assumption about the distribution's form (latency is anything but
// normal) and runs directly on the HDR histogram's bins, whose 3
// significant digits make bin ties harmless. Its weakness is the other
// way round: with thousands of requests it calls a 1% shift significant,
// which is why a regression also needs an effect size beyond the
// threshold (see Threshold) — significance says the shift is real, the
// threshold says it matters.
type KS struct {
	// D is the largest distance between the two empirical CDFs.
	D float64 `json:"d"`
	// P is the asymptotic p-value of D; small means the runs differ.
	P     float64 `json:"p"`
	NBase int64   `json:"n_base"`
	NNew  int64   `json:"n_new"`
}

// Significant reports whether the distributions differ at level alpha.
func (k KS) Significant(alpha float64) bool { return k.NBase > 0 && k.NNew > 0 && k.P < alpha }

// ksTest runs the test on two weighted samples.
func ksTest(a, b []weighted) KS {
	sortW := func(s []weighted) { sort.Slice(s, func(i, j int) bool { return s[i].v < s[j].v }) }
	sortW(a)
	sortW(b)
	var na, nb int64
	for _, w := range a {
		na += w.n
	}
	for _, w := range b {
		nb += w.n
	}
	k := KS{NBase: na, NNew: nb, P: 1}
	if na == 0 || nb == 0 {
		return k
	}
	var i, j int
	var ca, cb int64
	for i < len(a) || j < len(b) {
		// Step past every value equal to the smaller head in both samples,
		// so ties never open a gap that is not in the data.
		v := math.Inf(1)
		if i < len(a) {
			v = a[i].v
		}
		if j < len(b) && b[j].v < v {
			v = b[j].v
		}
		for i < len(a) && a[i].v == v {
			ca += a[i].n
			i++
		}
		for j < len(b) && b[j].v == v {
			cb += b[j].n
			j++
		}
		k.D = math.Max(k.D, math.Abs(float64(ca)/float64(na)-float64(cb)/float64(nb)))
	}
	ne := float64(na) * float64(nb) / float64(na+nb)
	sq := math.Sqrt(ne)
	k.P = kolmogorovQ((sq + 0.12 + 0.11/sq) * k.D)
	return k
}

// kolmogorovQ is the Kolmogorov distribution's survival function, with
// Stephens' small-sample correction applied by the caller (Numerical
// Recipes, probks).
func kolmogorovQ(lambda float64) float64 {
	if lambda < 0.2 {
		return 1
	}
	sum, sign := 0.0, 1.0
	for k := 1; k <= 100; k++ {
		term := sign * 2 * math.Exp(-2*float64(k*k)*lambda*lambda)
		sum += term
		if math.Abs(term) < 1e-12 {
			break
		}
		sign = -sign
	}
	return math.Min(1, math.Max(0, sum))
}

// histBins turns an HDR histogram into weighted values (microseconds).
func histBins(h *hdr.Histogram) []weighted {
	var out []weighted
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			out = append(out, weighted{v: float64(b.From), n: b.Count})
		}
	}
	return out
}

func samples(vs []float64) []weighted {
	out := make([]weighted, len(vs))
	for i, v := range vs {
		out[i] = weighted{v: v, n: 1}
	}
	return out
}

// twoProportionP is the two-sided p-value of a pooled two-proportion z
// test: did the error rate really change, or is it a handful of errors
// either way? A normal approximation is fine at the request counts a load
// run has; with no errors in either run there is nothing to test.
func twoProportionP(errA, nA, errB, nB int64) float64 {
	if nA == 0 || nB == 0 || errA+errB == 0 {
		return 1
	}
	pa, pb := float64(errA)/float64(nA), float64(errB)/float64(nB)
	pool := float64(errA+errB) / float64(nA+nB)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(nA) + 1/float64(nB)))
	if se == 0 {
		return 1
	}
	z := math.Abs(pa-pb) / se
	return math.Erfc(z / math.Sqrt2)
}
