"""What the platform installs into a cluster, described once: the Helm add-ons (``registry``), the EKS
managed add-ons' pods (``eks``), and how a Helm release is made (``helm``). Pure data and builders that
import no component: the components, the config, the capacity model and the plan read them."""
