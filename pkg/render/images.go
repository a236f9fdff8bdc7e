package render

import "errors"

// ImagesFromEnv returns the component images an operator renders, from its
// environment: CONTROLLER_IMAGE and SPEAKER_IMAGE default to self (the
// operator's own image, OPERATOR_IMAGE when set), FRR_IMAGE to lbstack's FRR
// image published beside the speaker's (see Companion). One image for every
// component is the default so that an install that only changes the
// operator's image (kustomize `images:`) deploys that image everywhere.
func ImagesFromEnv(getenv func(string) string, self string) (Images, error) {
	if v := getenv("OPERATOR_IMAGE"); v != "" {
		self = v
	}
	img := Images{Controller: getenv("CONTROLLER_IMAGE"), Speaker: getenv("SPEAKER_IMAGE"), FRR: getenv("FRR_IMAGE")}
	if img.Controller == "" {
		img.Controller = self
	}
	if img.Speaker == "" {
		img.Speaker = self
	}
	if img.Controller == "" || img.Speaker == "" {
		return img, errors.New("no image for the controller and speakers: set OPERATOR_IMAGE (or CONTROLLER_IMAGE and SPEAKER_IMAGE), or run the operator in a pod with POD_NAME set")
	}
	if img.FRR == "" {
		// lbstack's FRR image (the Dockerfile's frr target) is published
		// beside the speaker's.
		img.FRR = Companion(img.Speaker, "frr")
	}
	return img, nil
}
