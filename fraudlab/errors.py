"""Errors a user can act on; pages show their message with st.error."""


class FraudlabError(Exception):
    """Base class: the message says what is wrong and where."""


class IngestError(FraudlabError):
    """A file could not be read or mapped at all; nothing was changed."""


class MappingError(IngestError):
    """The column mapping is missing a required column or names an absent one."""


class WorkspaceError(FraudlabError):
    """The workspace file cannot be opened or is in an unexpected state."""


class ModelError(FraudlabError):
    """Training, loading or scoring with a model failed."""


class PromotionBlocked(FraudlabError):
    """The promotion guard refused a challenger; the message gives the reasons."""


class DecisionConflict(FraudlabError):
    """Someone else decided or locked the case since the analyst looked at it."""


class FeatureDefError(FraudlabError):
    """A user-defined feature is malformed, unsafe or clashes with an existing one; nothing was changed."""
