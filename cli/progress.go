package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/estiba/estiba/engine/api/types"
	"golang.org/x/term"
)

// renderProgress prints a JSONMessage stream as docker does: on a terminal
// one line per layer, redrawn in place with a bar, bytes and speed; else
// one plain line per status change. It returns the stream's error, if any.
func renderProgress(out io.Writer, r io.Reader) error {
	return renderProgressTo(out, r, isTerminal(out), time.Now)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func renderProgressTo(out io.Writer, r io.Reader, tty bool, now func() time.Time) error {
	p := &progressView{out: out, tty: tty, now: now, line: map[string]int{}, last: map[string]string{}, start: map[string]rate{}}
	dec := json.NewDecoder(r)
	for {
		var m types.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		switch {
		case m.Error != nil:
			return fmt.Errorf("%s", m.Error.Message)
		case m.ErrorMessage != "":
			return fmt.Errorf("%s", m.ErrorMessage)
		case m.Stream != "":
			p.reset()
			fmt.Fprint(out, m.Stream)
		case m.ID != "":
			p.layer(m)
		case m.Status != "":
			p.reset()
			fmt.Fprintln(out, m.Status)
		}
	}
}

type rate struct {
	at    time.Time
	bytes int64
}

type progressView struct {
	out   io.Writer
	tty   bool
	now   func() time.Time
	ids   []string
	line  map[string]int    // id → its line among ids (tty)
	last  map[string]string // id → last status printed (plain)
	start map[string]rate   // id → first progress seen, for the speed
}

// reset forgets the layer lines: a plain line printed below them means
// the cursor arithmetic starts over.
func (p *progressView) reset() {
	p.ids, p.line = nil, map[string]int{}
}

func (p *progressView) layer(m types.JSONMessage) {
	if !p.tty {
		// Progress ticks are for terminals; a log gets each status once.
		if p.last[m.ID] == m.Status {
			return
		}
		p.last[m.ID] = m.Status
		fmt.Fprintf(p.out, "%s: %s\n", m.ID, m.Status)
		return
	}
	text := m.ID + ": " + m.Status
	if m.Progress != "" {
		text += " " + m.Progress
	}
	if d := m.ProgressDetail; d != nil && d.Total > 0 {
		text += p.speed(m.ID, d.Current)
	}
	k, seen := p.line[m.ID]
	if !seen {
		p.line[m.ID] = len(p.ids)
		p.ids = append(p.ids, m.ID)
		fmt.Fprintf(p.out, "%s\n", text)
		return
	}
	// Up to the layer's line, clear it, write, and back down.
	up := len(p.ids) - k
	fmt.Fprintf(p.out, "\x1b[%dA\r\x1b[2K%s\r\x1b[%dB", up, text, up)
}

func (p *progressView) speed(id string, current int64) string {
	t := p.now()
	s, ok := p.start[id]
	if !ok {
		p.start[id] = rate{at: t, bytes: current}
		return ""
	}
	secs := t.Sub(s.at).Seconds()
	if secs <= 0 {
		return ""
	}
	return "  " + strings.TrimSpace(decSize(int64(float64(current-s.bytes)/secs))) + "/s"
}
