package keystore

import (
	"context"

	"github.com/keyward/keyward"
)

// Chain returns a verifier that asks each of vs in order (a keystore and
// the legacy key, say, or the engine and a keystore) and answers with the
// first that knows the key: any result but NOT_FOUND, MALFORMED and
// UNAVAILABLE. When none knows it, an error or UNAVAILABLE from any of them
// wins (the key might be one that verifier could not look up: the caller
// answers 503, never VALID), then NOT_FOUND, then MALFORMED. A chain of
// no verifiers answers MALFORMED to every key.
func Chain(vs ...keyward.KeyVerifier) keyward.KeyVerifier { return chain(vs) }

type chain []keyward.KeyVerifier

func (c chain) VerifyKey(ctx context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	var (
		firstErr    error
		unavailable *keyward.VerifyResult
		notFound    *keyward.VerifyResult
	)
	for _, v := range c {
		res, err := v.VerifyKey(ctx, r)
		if err == nil && res == nil {
			err = keyward.Errorf(keyward.EINTERNAL, "keystore: %T.VerifyKey returned no result and no error", v)
		}
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		case res.Code == keyward.DecisionUnavailable:
			if unavailable == nil {
				unavailable = res
			}
		case res.Code == keyward.DecisionNotFound:
			if notFound == nil {
				notFound = res
			}
		case res.Code == keyward.DecisionMalformed:
		default:
			return res, nil
		}
	}
	switch {
	case firstErr != nil:
		return nil, firstErr
	case unavailable != nil:
		return unavailable, nil
	case notFound != nil:
		return notFound, nil
	}
	return &keyward.VerifyResult{Code: keyward.DecisionMalformed}, nil
}
