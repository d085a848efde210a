package cli

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/estiba/estiba/engine/api/types"
)

// createBody is the JSON of a create request, written by hand: the CLI
// starts for every `estiba run`, and encoding/json's first use of a type
// walks it by reflection (field lists, encoders of every nested type),
// which at one use per process costs more than the request itself. The
// output decodes to what json.Marshal's does (TestCreateBodyMatchesJSON
// fills every field, so a field added to the types and missed here fails
// it). A NetworkingConfig (any) goes through json.Marshal.
func createBody(r *types.ContainerCreateRequest) ([]byte, error) {
	if r.NetworkingConfig != nil {
		return json.Marshal(r)
	}
	w := jsonObject{b: make([]byte, 0, 512)}
	w.open()
	w.config(&r.Config)
	if hc := r.HostConfig; hc != nil {
		w.key("HostConfig")
		w.hostConfig(hc)
	}
	w.close()
	return w.b, nil
}

// jsonObject appends the members of JSON objects.
type jsonObject struct{ b []byte }

func (w *jsonObject) open()  { w.b = append(w.b, '{') }
func (w *jsonObject) close() { w.b = append(w.b, '}') }

// key starts a member: after a comma unless it is its object's first (no
// value ends in '{').
func (w *jsonObject) key(k string) {
	if w.b[len(w.b)-1] != '{' {
		w.b = append(w.b, ',')
	}
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *jsonObject) str(k, v string) {
	if v != "" {
		w.key(k)
		w.b = appendString(w.b, v)
	}
}

func (w *jsonObject) boolean(k string, v bool) {
	if v {
		w.key(k)
		w.b = append(w.b, "true"...)
	}
}

func (w *jsonObject) int(k string, v int64) {
	if v != 0 {
		w.key(k)
		w.b = strconv.AppendInt(w.b, v, 10)
	}
}

func (w *jsonObject) strs(k string, v []string) {
	if len(v) > 0 {
		w.key(k)
		w.b = appendStrings(w.b, v)
	}
}

func (w *jsonObject) set(k string, m map[string]struct{}) {
	if len(m) == 0 {
		return
	}
	w.key(k)
	w.open()
	for _, k := range sortedKeys(m) {
		w.key(k)
		w.b = append(w.b, "{}"...)
	}
	w.close()
}

func (w *jsonObject) strMap(k string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	w.key(k)
	w.open()
	for _, k := range sortedKeys(m) {
		w.key(k)
		w.b = appendString(w.b, m[k])
	}
	w.close()
}

func (w *jsonObject) config(c *types.Config) {
	w.str("Hostname", c.Hostname)
	w.str("Domainname", c.Domainname)
	w.str("User", c.User)
	w.boolean("AttachStdin", c.AttachStdin)
	w.boolean("AttachStdout", c.AttachStdout)
	w.boolean("AttachStderr", c.AttachStderr)
	w.set("ExposedPorts", c.ExposedPorts)
	w.boolean("Tty", c.Tty)
	w.boolean("OpenStdin", c.OpenStdin)
	w.boolean("StdinOnce", c.StdinOnce)
	w.strs("Env", c.Env)
	w.strs("Cmd", c.Cmd)
	if h := c.Healthcheck; h != nil {
		w.key("Healthcheck")
		w.open()
		w.strs("Test", h.Test)
		w.int("Interval", int64(h.Interval))
		w.int("Timeout", int64(h.Timeout))
		w.int("StartPeriod", int64(h.StartPeriod))
		w.int("Retries", int64(h.Retries))
		w.close()
	}
	w.str("Image", c.Image)
	w.set("Volumes", c.Volumes)
	w.str("WorkingDir", c.WorkingDir)
	w.strs("Entrypoint", c.Entrypoint)
	w.strMap("Labels", c.Labels)
	w.str("StopSignal", c.StopSignal)
	if c.StopTimeout != nil {
		w.key("StopTimeout")
		w.b = strconv.AppendInt(w.b, int64(*c.StopTimeout), 10)
	}
}

func (w *jsonObject) hostConfig(hc *types.HostConfig) {
	w.open()
	w.strs("Binds", hc.Binds)
	// Structs are never omitted (omitempty does not apply to them).
	w.key("LogConfig")
	w.open()
	w.str("Type", hc.LogConfig.Type)
	w.strMap("Config", hc.LogConfig.Config)
	w.close()
	w.str("NetworkMode", hc.NetworkMode)
	if len(hc.PortBindings) > 0 {
		w.key("PortBindings")
		w.open()
		for _, port := range sortedKeys(hc.PortBindings) {
			w.key(port)
			if hc.PortBindings[port] == nil {
				w.b = append(w.b, "null"...)
				continue
			}
			w.b = append(w.b, '[')
			for i, pb := range hc.PortBindings[port] {
				if i > 0 {
					w.b = append(w.b, ',')
				}
				w.b = append(w.b, `{"HostIp":`...)
				w.b = appendString(w.b, pb.HostIP)
				w.b = append(w.b, `,"HostPort":`...)
				w.b = appendString(w.b, pb.HostPort)
				w.b = append(w.b, '}')
			}
			w.b = append(w.b, ']')
		}
		w.close()
	}
	w.key("RestartPolicy")
	w.open()
	w.str("Name", hc.RestartPolicy.Name)
	w.int("MaximumRetryCount", int64(hc.RestartPolicy.MaximumRetryCount))
	w.close()
	w.boolean("AutoRemove", hc.AutoRemove)
	w.strs("CapAdd", hc.CapAdd)
	w.strs("CapDrop", hc.CapDrop)
	w.boolean("Privileged", hc.Privileged)
	w.boolean("ReadonlyRootfs", hc.ReadonlyRootfs)
	w.strs("SecurityOpt", hc.SecurityOpt)
	w.strMap("Tmpfs", hc.Tmpfs)
	w.str("UsernsMode", hc.UsernsMode)
	if hc.Init != nil {
		w.key("Init")
		w.b = strconv.AppendBool(w.b, *hc.Init)
	}
	if len(hc.Mounts) > 0 {
		w.key("Mounts")
		w.b = append(w.b, '[')
		for i, m := range hc.Mounts {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.open()
			w.str("Type", m.Type)
			w.str("Source", m.Source)
			w.str("Target", m.Target)
			w.boolean("ReadOnly", m.ReadOnly)
			w.close()
		}
		w.b = append(w.b, ']')
	}
	w.boolean("PublishAllPorts", hc.PublishAllPorts)
	r := &hc.Resources
	w.int("CpuShares", r.CPUShares)
	w.int("Memory", r.Memory)
	w.int("NanoCpus", r.NanoCPUs)
	w.int("CpuPeriod", r.CPUPeriod)
	w.int("CpuQuota", r.CPUQuota)
	w.str("CpusetCpus", r.CpusetCpus)
	w.int("MemorySwap", r.MemorySwap)
	if r.PidsLimit != nil {
		w.key("PidsLimit")
		w.b = strconv.AppendInt(w.b, *r.PidsLimit, 10)
	}
	if len(r.Ulimits) > 0 {
		w.key("Ulimits")
		w.b = append(w.b, '[')
		for i, u := range r.Ulimits {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			if u == nil {
				w.b = append(w.b, "null"...)
				continue
			}
			w.b = append(w.b, `{"Name":`...)
			w.b = appendString(w.b, u.Name)
			w.b = append(w.b, `,"Hard":`...)
			w.b = strconv.AppendInt(w.b, u.Hard, 10)
			w.b = append(w.b, `,"Soft":`...)
			w.b = strconv.AppendInt(w.b, u.Soft, 10)
			w.b = append(w.b, '}')
		}
		w.b = append(w.b, ']')
	}
	bw := &hc.Bandwidth
	w.str("EstibaEgressRate", bw.EstibaEgressRate)
	w.str("EstibaIngressRate", bw.EstibaIngressRate)
	w.str("EstibaEgressBurst", bw.EstibaEgressBurst)
	w.str("EstibaIngressBurst", bw.EstibaIngressBurst)
	w.close()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendStrings(b []byte, v []string) []byte {
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string, as encoding/json writes it
// (HTML characters aside, which it escapes and no decoder needs):
// control characters escaped, invalid UTF-8 as U+FFFD, U+2028 and U+2029
// escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// parseCreateResponse reads a create's answer as the daemon writes it,
// {"Id":"…","Warnings":[…]}, without encoding/json (see createBody);
// anything else (escapes, other members) is left to encoding/json.
func parseCreateResponse(b []byte) (types.ContainerCreateResponse, error) {
	var r types.ContainerCreateResponse
	p := jsonScan{b: b}
	ok := p.skip('{')
	for ok && !p.skip('}') {
		if len(r.ID) > 0 || r.Warnings != nil {
			ok = p.skip(',')
		}
		var k string
		if k, ok = p.str(); !ok || !p.skip(':') {
			ok = false
			break
		}
		switch k {
		case "Id":
			r.ID, ok = p.str()
		case "Warnings":
			r.Warnings, ok = p.strs()
		default:
			ok = false
		}
	}
	if !ok || p.rest() {
		r = types.ContainerCreateResponse{}
		err := json.Unmarshal(b, &r)
		return r, err
	}
	return r, nil
}

// jsonScan reads the little JSON parseCreateResponse takes.
type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// skip consumes c if it comes next.
func (p *jsonScan) skip(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters.
func (p *jsonScan) str() (string, bool) {
	if !p.skip('"') {
		return "", false
	}
	for j := p.i; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := string(p.b[p.i:j])
			p.i = j + 1
			return s, utf8.ValidString(s)
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// strs reads an array of strings; null is nil.
func (p *jsonScan) strs() ([]string, bool) {
	p.space()
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return nil, true
	}
	if !p.skip('[') {
		return nil, false
	}
	out := []string{}
	for !p.skip(']') {
		if len(out) > 0 && !p.skip(',') {
			return nil, false
		}
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// rest reports whether anything but spaces follows.
func (p *jsonScan) rest() bool {
	p.space()
	return p.i < len(p.b)
}

// parseWaitResponse reads a wait's answer as the daemon writes it,
// {"StatusCode":N} (see parseCreateResponse); anything else is left to
// encoding/json.
func parseWaitResponse(b []byte) (types.WaitResponse, error) {
	var r types.WaitResponse
	p := jsonScan{b: b}
	if p.skip('{') {
		if k, ok := p.str(); ok && k == "StatusCode" && p.skip(':') {
			if n, ok := p.int(); ok && p.skip('}') && !p.rest() {
				r.StatusCode = n
				return r, nil
			}
		}
	}
	err := json.Unmarshal(b, &r)
	return r, err
}

// int reads an integer.
func (p *jsonScan) int() (int64, bool) {
	p.space()
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	p.i = j
	return n, err == nil
}
