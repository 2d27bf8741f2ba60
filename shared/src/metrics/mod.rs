//! The metrics engine: joins SageMaker data capture with ground truth and computes Model Monitor's
//! model-quality and data-quality metrics. No AWS SDK dependency.
