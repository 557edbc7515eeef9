"""The offline plan: run a Pulumi program under a mock engine and a simulated cloud, and report.

``python -m aiplatform.plan`` plans the project in the current directory (see ``cli``). The modules
import one way: ``cloud`` (simulated AWS) <- ``mock_engine`` <- ``runner`` <- ``model`` (Plan,
Report, manifests) <- the reports (``policy_report``, ``critical_path``, ``cost``, ``capacity_report``) <- ``cli``.
"""
