package validate

import (
	"slices"
	"time"
)

// Summary is a run's outcome, as written to summary.json.
type Summary struct {
	Environment string    `json:"environment"`
	Method      string    `json:"method"`
	Field       string    `json:"field,omitempty"` // the compared field ("" = the whole output)
	Started     time.Time `json:"started"`
	Seconds     float64   `json:"seconds"`
	Replicas    int       `json:"replicas"` // replicas the calls were spread over
	Inputs      int       `json:"inputs"`
	// Consistent, Inconsistent and Failed count inputs by verdict; they add up to Inputs.
	Consistent   int `json:"consistent"`
	Inconsistent int `json:"inconsistent"`
	Failed       int `json:"failed"`
	// Distinct is how many different outputs the inputs that gave one produced; Diversity is
	// Distinct / (inputs that gave an output). 1 means every input gave its own output.
	Distinct  int     `json:"distinct"`
	Diversity float64 `json:"diversity"`
	// Duplicates are groups of inputs (labels) that gave the same output, largest first.
	Duplicates [][]string `json:"duplicates,omitempty"`
	// Problems lists the inputs that were not consistent: label and reason, in input order.
	Problems []Problem `json:"problems,omitempty"`
	OK       bool      `json:"ok"` // every input was consistent
}

// Problem is one input that was not consistent.
type Problem struct {
	Label   string `json:"label"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
}

// MaxDuplicateGroups bounds the groups listed in a summary (all are still counted in Distinct).
const MaxDuplicateGroups = 20

// Summarize counts verdicts and measures diversity over results (in any order).
func Summarize(results []Result) Summary {
	rs := slices.Clone(results)
	slices.SortFunc(rs, func(a, b Result) int { return a.Input.Index - b.Input.Index })
	s := Summary{Inputs: len(rs)}
	groups := map[string][]string{}
	var order []string
	withOutput := 0
	for _, r := range rs {
		switch r.Verdict {
		case Consistent:
			s.Consistent++
		case Inconsistent:
			s.Inconsistent++
		default:
			s.Failed++
		}
		if r.Verdict != Consistent {
			s.Problems = append(s.Problems, Problem{Label: r.Input.Label, Verdict: r.Verdict, Reason: r.Reason})
		}
		if r.Fingerprint == "" {
			continue
		}
		withOutput++
		if _, ok := groups[r.Fingerprint]; !ok {
			order = append(order, r.Fingerprint)
		}
		groups[r.Fingerprint] = append(groups[r.Fingerprint], r.Input.Label)
	}
	s.Distinct = len(groups)
	if withOutput > 0 {
		s.Diversity = float64(s.Distinct) / float64(withOutput)
	}
	for _, fp := range order {
		if len(groups[fp]) > 1 {
			s.Duplicates = append(s.Duplicates, groups[fp])
		}
	}
	slices.SortStableFunc(s.Duplicates, func(a, b []string) int { return len(b) - len(a) })
	if len(s.Duplicates) > MaxDuplicateGroups {
		s.Duplicates = s.Duplicates[:MaxDuplicateGroups]
	}
	s.OK = s.Inputs > 0 && s.Consistent == s.Inputs
	return s
}
