package shim

import (
	"context"

	taskv2 "github.com/containerd/containerd/api/runtime/task/v2"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// containerd 1.x calls the task API as containerd.task.v2.Task; its
// messages are task v3's, field for field. taskV2 serves it by passing each
// call on to the v3 service, the messages converted through their wire form.
type taskV2 struct{ s *service }

func registerTaskV2(server *ttrpc.Server, s *service) {
	taskv2.RegisterTTRPCTaskService(server, taskV2{s})
}

// call converts the v2 request in to v3's, calls f and converts its answer
// to out.
func call[In, Req, Resp, Out proto.Message](ctx context.Context, in In, req Req, f func(context.Context, Req) (Resp, error), out Out) (Out, error) {
	var zero Out
	b, err := proto.Marshal(in)
	if err != nil {
		return zero, err
	}
	if err := proto.Unmarshal(b, req); err != nil {
		return zero, err
	}
	resp, err := f(ctx, req)
	if err != nil {
		return zero, err
	}
	if b, err = proto.Marshal(resp); err != nil {
		return zero, err
	}
	return out, proto.Unmarshal(b, out)
}

func (t taskV2) State(ctx context.Context, r *taskv2.StateRequest) (*taskv2.StateResponse, error) {
	return call(ctx, r, &taskAPI.StateRequest{}, t.s.State, &taskv2.StateResponse{})
}

func (t taskV2) Create(ctx context.Context, r *taskv2.CreateTaskRequest) (*taskv2.CreateTaskResponse, error) {
	return call(ctx, r, &taskAPI.CreateTaskRequest{}, t.s.Create, &taskv2.CreateTaskResponse{})
}

func (t taskV2) Start(ctx context.Context, r *taskv2.StartRequest) (*taskv2.StartResponse, error) {
	return call(ctx, r, &taskAPI.StartRequest{}, t.s.Start, &taskv2.StartResponse{})
}

func (t taskV2) Delete(ctx context.Context, r *taskv2.DeleteRequest) (*taskv2.DeleteResponse, error) {
	return call(ctx, r, &taskAPI.DeleteRequest{}, t.s.Delete, &taskv2.DeleteResponse{})
}

func (t taskV2) Pids(ctx context.Context, r *taskv2.PidsRequest) (*taskv2.PidsResponse, error) {
	return call(ctx, r, &taskAPI.PidsRequest{}, t.s.Pids, &taskv2.PidsResponse{})
}

func (t taskV2) Pause(ctx context.Context, r *taskv2.PauseRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.PauseRequest{}, t.s.Pause, &emptypb.Empty{})
}

func (t taskV2) Resume(ctx context.Context, r *taskv2.ResumeRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.ResumeRequest{}, t.s.Resume, &emptypb.Empty{})
}

func (t taskV2) Checkpoint(ctx context.Context, r *taskv2.CheckpointTaskRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.CheckpointTaskRequest{}, t.s.Checkpoint, &emptypb.Empty{})
}

func (t taskV2) Kill(ctx context.Context, r *taskv2.KillRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.KillRequest{}, t.s.Kill, &emptypb.Empty{})
}

func (t taskV2) Exec(ctx context.Context, r *taskv2.ExecProcessRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.ExecProcessRequest{}, t.s.Exec, &emptypb.Empty{})
}

func (t taskV2) ResizePty(ctx context.Context, r *taskv2.ResizePtyRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.ResizePtyRequest{}, t.s.ResizePty, &emptypb.Empty{})
}

func (t taskV2) CloseIO(ctx context.Context, r *taskv2.CloseIORequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.CloseIORequest{}, t.s.CloseIO, &emptypb.Empty{})
}

func (t taskV2) Update(ctx context.Context, r *taskv2.UpdateTaskRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.UpdateTaskRequest{}, t.s.Update, &emptypb.Empty{})
}

func (t taskV2) Wait(ctx context.Context, r *taskv2.WaitRequest) (*taskv2.WaitResponse, error) {
	return call(ctx, r, &taskAPI.WaitRequest{}, t.s.Wait, &taskv2.WaitResponse{})
}

func (t taskV2) Stats(ctx context.Context, r *taskv2.StatsRequest) (*taskv2.StatsResponse, error) {
	return call(ctx, r, &taskAPI.StatsRequest{}, t.s.Stats, &taskv2.StatsResponse{})
}

func (t taskV2) Connect(ctx context.Context, r *taskv2.ConnectRequest) (*taskv2.ConnectResponse, error) {
	return call(ctx, r, &taskAPI.ConnectRequest{}, t.s.Connect, &taskv2.ConnectResponse{})
}

func (t taskV2) Shutdown(ctx context.Context, r *taskv2.ShutdownRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.ShutdownRequest{}, t.s.Shutdown, &emptypb.Empty{})
}
