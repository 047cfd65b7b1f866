package queue

import (
	"context"
	"time"
)

// KindDeliver is a job that delivers a finished report job's result (e-mail, webhook).
// It runs after the report, as its own job, so a failed delivery is retried with backoff
// without running the report again.
const KindDeliver Kind = "deliver"

// States of a delivery (rpt_deliveries.state).
const (
	// DeliveryPending: the report job has not finished, or no deliver job is queued yet.
	DeliveryPending = "pending"
	// DeliveryQueued: a deliver job is queued for it (deliver_job_id).
	DeliveryQueued = "queued"
	// DeliverySending: an attempt is about to hand the message over (or did, and crashed
	// before recording it): a retry sends again with the same Message-ID.
	DeliverySending = "sending"
	// DeliverySent: the receiving server accepted it; nothing sends it again.
	DeliverySent = "sent"
	// DeliverySkipped: the report job did not succeed, so there is nothing to deliver.
	DeliverySkipped = "skipped"
)

// Delivery is one row of rpt_deliveries: one target of one report job.
type Delivery struct {
	ID           int64      `json:"id"`
	JobID        int64      `json:"job"`    // the report job whose result is delivered
	Target       string     `json:"target"` // mailto:a@example.com,b@example.com or https://...
	State        string     `json:"state"`
	DeliverJobID int64      `json:"deliver_job,omitempty"`
	MessageID    string     `json:"message_id,omitempty"`
	Attempts     int        `json:"attempts"` // hand-overs begun (a second one is a resend)
	SentAt       *time.Time `json:"sent_at,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
}

// DeliveryDue is a delivery whose report job has finished while no deliver job is
// queued for it yet.
type DeliveryDue struct {
	Delivery
	JobStatus Status
}

// Deliveries is the table of deliveries. Every Store implements it.
//
// The sent state is what makes delivery exactly once where it can be: an attempt
// records "sending" under its lease before it hands the message over, and "sent" as
// soon as the receiver accepted it; a later attempt that finds "sent" does not send.
// The window left is between the receiver's acceptance and the "sent" write (a crash or
// a queue outage there): the next attempt sends again, with the same Message-ID.
type Deliveries interface {
	// DeliveryAdd records the targets of report job jobID; a target the job has already
	// is kept as it is (a retried submit adds nothing).
	DeliveryAdd(ctx context.Context, jobID int64, targets []string) error
	// DeliveryList lists the deliveries of report job jobID, in the order added.
	DeliveryList(ctx context.Context, jobID int64) ([]Delivery, error)
	// DeliveryGet returns one delivery; ErrNotFound for an unknown id.
	DeliveryGet(ctx context.Context, id int64) (Delivery, error)
	// DeliveryDueList lists up to limit deliveries whose report job is terminal and
	// which no deliver job has been queued for (state pending), oldest first.
	DeliveryDueList(ctx context.Context, limit int) ([]DeliveryDue, error)
	// DeliveryQueued records the deliver job of a pending delivery (state queued), or,
	// with deliverJobID 0, that there is nothing to deliver (state skipped). A delivery
	// that is no longer pending is left alone: of two agents, the first one's write wins.
	DeliveryQueued(ctx context.Context, id, deliverJobID int64) error
	// DeliverySending records, fenced by the deliver job's lease, that the attempt is
	// about to hand over the message with messageID (state sending, attempts + 1). It
	// returns the delivery as it was before; ErrLeaseLost when the lease is gone. A
	// delivery already sent is returned unchanged (the caller does not send).
	DeliverySending(ctx context.Context, l Lease, id int64, messageID string) (Delivery, error)
	// DeliverySent records that the receiver accepted the message. It is not fenced: a
	// message that went out was sent, whoever holds the lease now.
	DeliverySent(ctx context.Context, id int64) error
}
