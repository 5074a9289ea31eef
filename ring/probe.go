package ring

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoProbe means the kernel has no IORING_REGISTER_PROBE (before 5.6):
// which opcodes it supports can only be inferred from its release.
var ErrNoProbe = errors.New("ring: kernel cannot probe opcodes (IORING_REGISTER_PROBE is 5.6+)")

// Probe is the kernel's answer to IORING_REGISTER_PROBE: which opcodes it
// supports. On a simulated release, opcodes newer than it are unsupported.
type Probe struct {
	raw rawProbe
}

// Probe asks the kernel which opcodes it supports. It returns ErrNoProbe
// (wrapping the kernel's EINVAL) where the kernel cannot tell.
func (r *Ring) Probe() (*Probe, error) {
	p := new(Probe)
	// The kernel rejects a probe buffer that is not all zero.
	_, err := r.register(RegisterProbe, unsafe.Pointer(&p.raw), probeOps)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return nil, errors.Join(ErrNoProbe, err)
		}
		return nil, err
	}
	if r.release != Native {
		last := Op(0)
		for op := Op(0); op < OpLast && op <= p.raw.LastOp; op++ {
			if !r.release.Has(op.Since()) {
				p.raw.Ops[op].Flags &^= OpSupported
			} else {
				last = op
			}
		}
		p.raw.LastOp = last
		p.raw.OpsLen = uint8(last) + 1
	}
	return p, nil
}

// LastOp is the highest opcode the kernel knows.
func (p *Probe) LastOp() Op { return p.raw.LastOp }

// OpsLen is how many ProbeOp entries the kernel filled in.
func (p *Probe) OpsLen() int { return int(p.raw.OpsLen) }

// Supports reports whether the kernel runs op.
func (p *Probe) Supports(op Op) bool {
	return op <= p.raw.LastOp && int(op) < p.OpsLen() && p.raw.Ops[op].Flags&OpSupported != 0
}

// Ops returns the raw per-opcode entries.
func (p *Probe) Ops() []ProbeOp { return p.raw.Ops[:p.raw.OpsLen] }
