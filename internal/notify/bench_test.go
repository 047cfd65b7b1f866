package notify

import (
	"context"
	"testing"

	"rpt/internal/queue"
)

// BenchmarkWakeRoundTrip is publish -> broker -> subscriber of one wake-up on the
// embedded broker: the part of submit -> running that MQTT adds.
func BenchmarkWakeRoundTrip(b *testing.B) {
	br, err := StartBroker(context.Background(), "127.0.0.1:0", testBrokerOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	o := Options{URL: agentURL(br), Prefix: "bench", Logger: quietLogger()}
	pub, err := Connect(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub, err := Connect(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	got := make(chan struct{}, 1)
	sub.SubscribeWake(func() { got <- struct{}{} })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pub.PublishWake()
		<-got
	}
}

// BenchmarkPublishEvent is what a publish costs its caller (encode and enqueue).
func BenchmarkPublishEvent(b *testing.B) {
	c, err := Connect(context.Background(), Options{URL: "tcp://127.0.0.1:1", Logger: quietLogger(), BufferSize: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		b.StopTimer() // Close is not part of a publish
		_ = c.Close()
	}()
	e := EventFrom(ev(1, 1, "trial-balance", queue.EventProgress))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.PublishEvent(e)
	}
}
