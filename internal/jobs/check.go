package jobs

// Check validates a submit exactly as Submit would (the report exists, its source is
// configured and can run it, the parameters parse, required ones are given, the
// priority and once-per are allowed), at the occurrence or now, without touching the
// queue. rpt cron lint checks crontab lines with it, so a line that lint passes is one
// rpt submit accepts.
func (s *Service) Check(r SubmitRequest) error {
	_, _, err := s.prepare(r, s.now())
	return err
}
