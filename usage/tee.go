package usage

import "github.com/keyward/keyward"

// Tee returns a keyward.SignalSink that gives every signal to each of
// sinks in turn, so the verification engine can feed both abuse detection
// and an Aggregator. Nil sinks are skipped; with one sink left it is
// returned as it is, with none Tee returns nil. Each sink must honour the
// SignalSink contract (never block), since they run one after another.
func Tee(sinks ...keyward.SignalSink) keyward.SignalSink {
	var ss tee
	for _, s := range sinks {
		if s != nil {
			ss = append(ss, s)
		}
	}
	switch len(ss) {
	case 0:
		return nil
	case 1:
		return ss[0]
	}
	return ss
}

type tee []keyward.SignalSink

func (t tee) Signal(s keyward.Signal) {
	for _, sink := range t {
		sink.Signal(s)
	}
}
