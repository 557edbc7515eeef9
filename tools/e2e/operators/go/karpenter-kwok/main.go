// Karpenter's core with its kwok cloud provider, serving the AWS provider's EC2NodeClass.
//
// The kwok provider launches kwok nodes from a table of instance types (INSTANCE_TYPES_FILE_PATH) and
// knows only its own KWOKNodeClass. This program is kwok's own main (sigs.k8s.io/karpenter/kwok) with
// one difference: the supported node class is karpenter.k8s.aws/v1 EC2NodeClass, so the platform's
// NodePools and EC2NodeClasses are applied unchanged. A node class is ready when its status says so:
// in a real cluster the AWS provider resolves its subnets, security groups, AMIs and role; here the
// end-to-end harness's simulated AWS does.
package main

import (
	"context"

	"github.com/awslabs/operatorpkg/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"sigs.k8s.io/karpenter/kwok/apis/v1alpha1"
	kwok "sigs.k8s.io/karpenter/kwok/cloudprovider"
	"sigs.k8s.io/karpenter/pkg/cloudprovider/overlay"
	"sigs.k8s.io/karpenter/pkg/controllers"
	"sigs.k8s.io/karpenter/pkg/controllers/state"
	"sigs.k8s.io/karpenter/pkg/operator"
)

var nodeClassGroupVersion = schema.GroupVersion{Group: "karpenter.k8s.aws", Version: "v1"}

// EC2NodeClass is the AWS provider's node class as Karpenter's core reads it: a cluster-scoped object
// whose status conditions say whether nodes can launch from it. Its spec is kept as the API server
// holds it and never written.
type EC2NodeClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              map[string]interface{} `json:"spec,omitempty"`
	Status            EC2NodeClassStatus     `json:"status,omitempty"`
}

type EC2NodeClassStatus struct {
	Conditions []status.Condition `json:"conditions,omitempty"`
}

type EC2NodeClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EC2NodeClass `json:"items"`
}

func (in *EC2NodeClass) StatusConditions(opts ...status.ForOption) status.ConditionSet {
	return status.NewReadyConditions().For(in, opts...)
}

func (in *EC2NodeClass) GetConditions() []status.Condition { return in.Status.Conditions }

func (in *EC2NodeClass) SetConditions(conditions []status.Condition) { in.Status.Conditions = conditions }

func (in *EC2NodeClass) DeepCopyObject() runtime.Object {
	out := &EC2NodeClass{TypeMeta: in.TypeMeta}
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec != nil {
		out.Spec = runtime.DeepCopyJSON(in.Spec)
	}
	out.Status.Conditions = append([]status.Condition(nil), in.Status.Conditions...)
	return out
}

func (in *EC2NodeClassList) DeepCopyObject() runtime.Object {
	out := &EC2NodeClassList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range in.Items {
		out.Items = append(out.Items, *in.Items[i].DeepCopyObject().(*EC2NodeClass))
	}
	return out
}

func init() {
	// Karpenter's core names kinds through client-go's scheme (operatorpkg's object.GVK).
	scheme.Scheme.AddKnownTypes(nodeClassGroupVersion, &EC2NodeClass{}, &EC2NodeClassList{})
	metav1.AddToGroupVersion(scheme.Scheme, nodeClassGroupVersion)
}

// nodeClassView answers the kwok provider's reads of its KWOKNodeClass from the EC2NodeClass of the
// same name: the provider launches a node only when that node class is ready.
type nodeClassView struct {
	client.Client
}

func (v nodeClassView) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	kwokClass, ok := obj.(*v1alpha1.KWOKNodeClass)
	if !ok {
		return v.Client.Get(ctx, key, obj, opts...)
	}
	nodeClass := &EC2NodeClass{}
	if err := v.Client.Get(ctx, key, nodeClass, opts...); err != nil {
		return err
	}
	kwokClass.ObjectMeta = nodeClass.ObjectMeta
	kwokClass.Status.Conditions = nodeClass.Status.Conditions
	return nil
}

// cloudProvider is the kwok provider, serving EC2NodeClass.
type cloudProvider struct {
	*kwok.CloudProvider
}

func (cloudProvider) GetSupportedNodeClasses() []status.Object {
	return []status.Object{&EC2NodeClass{}}
}

func main() {
	ctx, op := operator.NewOperator()
	instanceTypes, err := kwok.ConstructInstanceTypes(ctx)
	if err != nil {
		log.FromContext(ctx).Error(err, "failed constructing instance types")
	}

	undecorated := cloudProvider{kwok.NewCloudProvider(ctx, nodeClassView{op.GetClient()}, instanceTypes)}
	provider := overlay.Decorate(undecorated, op.GetClient(), op.InstanceTypeStore)
	clusterState := state.NewCluster(op.Clock, op.GetClient(), provider)
	op.
		WithControllers(ctx, controllers.NewControllers(
			ctx,
			op.Manager,
			op.Clock,
			op.GetClient(),
			op.EventRecorder,
			provider,
			undecorated,
			clusterState,
			op.InstanceTypeStore,
		)...).Start(ctx)
}
