<?php echo "blog index";
