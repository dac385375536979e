package reliability

import (
	"errors"
	"fmt"
	"strings"
)

// Accounting is what a row's test measured about calls. A row whose fault involves calls counts them
// (Calls); a row about bad input or security that makes no calls says so and what it checked instead
// (NoCalls). What was lost is derived from the counts, never stated.
type Accounting struct {
	// Sent is how many calls the test sent (a CLI call refused before any request counts as sent).
	Sent int `json:"sent"`
	// Answered is how many of them got a result or a clear error (exit code and message).
	Answered int `json:"answered"`
	// Executed is how many calls the containers themselves counted (the shim's /stats `requests`,
	// summed over replicas as the change across the test, or a fixture's log of the calls it ran).
	Executed int `json:"executed"`
	// Uncounted is how many sent calls ran where no count survives (a container killed under them:
	// the shim's counter dies with its process), so they are left out of the duplicate check.
	Uncounted int `json:"uncounted,omitempty"`
	// CountedBy says where Executed comes from.
	CountedBy string `json:"counted_by,omitempty"`
	// NoCalls, for a row that makes no calls, says what the test checked instead.
	NoCalls string `json:"no_calls,omitempty"`
}

// Calls accounts for calls: sent, answered, and executed according to countedBy.
func Calls(sent, answered, executed int, countedBy string) Accounting {
	return Accounting{Sent: sent, Answered: answered, Executed: executed, CountedBy: countedBy}
}

// WithUncounted notes that n of the sent calls ran where their count was lost with the container.
func (a Accounting) WithUncounted(n int) Accounting {
	a.Uncounted = n
	return a
}

// NoCalls accounts for a row that makes no calls; checked says what was verified instead (state
// entry, containers, files).
func NoCalls(checked string) Accounting { return Accounting{NoCalls: checked} }

// Unanswered is how many sent calls got neither a result nor a clear error.
func (a Accounting) Unanswered() int { return max(0, a.Sent-a.Answered) }

// Twice is how many calls the containers counted beyond those sent to them: calls executed twice
// (a retry of a call that had run, say).
func (a Accounting) Twice() int { return max(0, a.Executed-(a.Sent-a.Uncounted)) }

// Lost is what the row lost: unanswered calls plus calls executed twice.
func (a Accounting) Lost() int { return a.Unanswered() + a.Twice() }

// Valid checks that the accounting is one of the two kinds and its counts make sense.
func (a Accounting) Valid() error {
	calls := a.Sent != 0 || a.Answered != 0 || a.Executed != 0 || a.Uncounted != 0 || a.CountedBy != ""
	switch {
	case a.NoCalls != "" && calls:
		return errors.New("an accounting either counts calls or says it made none, not both")
	case a.NoCalls != "":
		return nil
	case !calls:
		return errors.New("no accounting: count the calls (reliability.Calls) or say none were made (reliability.NoCalls)")
	case a.Sent <= 0:
		return errors.New("a call accounting must have sent at least one call")
	case a.Answered < 0 || a.Executed < 0 || a.Uncounted < 0 || a.Uncounted > a.Sent:
		return fmt.Errorf("impossible counts %+v", a)
	case a.Answered > a.Sent:
		return fmt.Errorf("%d answered of %d sent", a.Answered, a.Sent)
	case a.CountedBy == "":
		return errors.New("say where the executed count comes from (CountedBy)")
	}
	return nil
}

// String renders the "what was lost" cell.
func (a Accounting) String() string {
	if a.NoCalls != "" {
		return "no calls made; checked " + a.NoCalls
	}
	head := "nothing"
	if n := a.Lost(); n > 0 {
		var parts []string
		if u := a.Unanswered(); u > 0 {
			parts = append(parts, fmt.Sprintf("%d unanswered", u))
		}
		if d := a.Twice(); d > 0 {
			parts = append(parts, fmt.Sprintf("%d executed twice", d))
		}
		head = fmt.Sprintf("LOST %d (%s)", n, strings.Join(parts, ", "))
	}
	s := fmt.Sprintf("%s: %d sent, %d answered, %d executed by %s", head, a.Sent, a.Answered, a.Executed, a.CountedBy)
	if a.Uncounted > 0 {
		s += fmt.Sprintf(" (+%d in a killed container, uncounted)", a.Uncounted)
	}
	return s
}
