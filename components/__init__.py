"""aiplatform: an AI platform on AWS EKS as typed Pulumi components.

The source lives in ``components/`` of the platform's repository and installs under the import name
``aiplatform``; modules import each other relatively, so the package has no other name.
"""

__version__ = "0.1.0"
